package store

import "gorm.io/gorm"

// GormDB lets the store's tests hook its queries (gorm callbacks).
func (s *Store) GormDB() *gorm.DB { return s.db }
