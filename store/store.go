// Package store is Rampart's queryable projection of what Temporal executes: alerts,
// runs, steps, actions, and the reference data enrichment reads (assets, IOCs).
//
// Temporal is the source of truth for execution; this store is written only by
// activities, idempotently (upserts on natural keys), and read by the API. The same
// code runs on SQLite (rampart dev) and PostgreSQL (production).
//
// It may import gorm, its drivers, schemas and triage; never workflows, server or
// integrations.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlite "github.com/libtnb/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// Store is the app database.
type Store struct {
	db      *gorm.DB
	dialect string
	inTx    bool // bound to a transaction by InTx
	stmts   *stmtPool
	dsn     string // to keep its password out of Ping's errors
}

// Dialects.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// IsPostgresDSN reports whether dsn selects PostgreSQL (postgres:// or postgresql://).
func IsPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database the DSN names (a postgres:// URL selects
// PostgreSQL, anything else is a SQLite file path) and checks that it answers.
func Open(ctx context.Context, dsn string) (*Store, error) {
	s, err := Connect(dsn)
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Connect is Open without the check: the store connects when first used, so a
// database that does not answer yet fails the calls made meanwhile, not this one.
func Connect(dsn string) (*Store, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("store: database DSN is empty")
	}
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		DisableAutomaticPing:   true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	var (
		dialector gorm.Dialector
		dialect   string
	)
	if IsPostgresDSN(dsn) {
		dialector, dialect = postgres.Open(dsn), DialectPostgres
	} else {
		path, err := sqliteDSN(dsn)
		if err != nil {
			return nil, err
		}
		dialector, dialect = sqlite.Open(path), DialectSQLite
	}
	db, err := gorm.Open(dialector, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dialect, redactDSNError(err, dsn))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// Activities run the same few statements for every alert: preparing each once
	// per connection saves re-parsing them, which dominates on SQLite.
	pool := newStmtPool(sqlDB, dialect == DialectSQLite)
	db.ConnPool, db.Statement.ConnPool = pool, pool
	if dialect == DialectSQLite {
		// One writer at a time is all SQLite allows; a small pool of readers with WAL
		// keeps the API responsive while activities write.
		sqlDB.SetMaxOpenConns(4)
	} else {
		sqlDB.SetMaxOpenConns(16)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	return &Store{db: db, dialect: dialect, stmts: pool, dsn: dsn}, nil
}

// sqliteDSN turns a file path into a modernc DSN with WAL, a busy timeout and
// foreign keys on. A path already carrying a query string is used as given.
func sqliteDSN(path string) (string, error) {
	if strings.Contains(path, "?") {
		return path, nil
	}
	if path != ":memory:" {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return "", fmt.Errorf("store: sqlite dir: %w", err)
			}
		}
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode(), nil
}

// redactDSNError keeps a password in the DSN out of error messages and logs.
func redactDSNError(err error, dsn string) error {
	u, perr := url.Parse(dsn)
	if perr != nil || u.User == nil {
		return err
	}
	if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(err.Error(), pw) {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "***"))
	}
	return err
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Ping checks the database is reachable.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", redactDSNError(err, s.dsn))
	}
	return nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	s.stmts.close()
	return sqlDB.Close()
}

// InTx runs fn with a Store bound to one transaction: the writes of one activity
// commit together or not at all, and cost one commit instead of several.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	return s.atomically(ctx, func(tx *gorm.DB) error { return fn(s.boundTo(tx)) })
}

// boundTo is this Store working in transaction tx.
func (s *Store) boundTo(tx *gorm.DB) *Store {
	return &Store{db: tx, dialect: s.dialect, inTx: true, stmts: s.stmts, dsn: s.dsn}
}

// readConsistently runs fn's reads on one snapshot of the database: a read-only
// transaction, repeatable read on PostgreSQL (a deferred one on SQLite, whose
// snapshot is taken at its first read). It takes no writer's turn.
func (s *Store) readConsistently(ctx context.Context, fn func(tx *Store) error) error {
	if s.inTx {
		return fn(s)
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return fn(s.boundTo(tx)) },
		&sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
}

// atomically runs fn in a transaction, or in the caller's when there is one: a
// nested gorm transaction would cost a uniquely named savepoint, parsed anew each
// time. Every write goes through it, which is what lets SQLite writers queue in
// the process (stmtPool) instead of sleeping in SQLite's busy handler.
func (s *Store) atomically(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if s.inTx {
		return fn(s.db.WithContext(ctx))
	}
	return s.db.WithContext(ctx).Transaction(fn)
}

// update sets fields on the row of model that where (with key) selects, and
// returns ErrNotFound when there is none; what names the row in errors.
func (s *Store) update(ctx context.Context, what, key string, model any, where string, fields map[string]any) error {
	return s.atomically(ctx, func(db *gorm.DB) error {
		res := db.Model(model).Where(where, key).Updates(fields)
		if res.Error != nil {
			return fmt.Errorf("store: update %s: %w", what, res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("store: update %s %s: %w", what, key, ErrNotFound)
		}
		return nil
	})
}

// Migrate creates or updates the schema. It is safe to run on every boot.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.db.WithContext(ctx).AutoMigrate(allModels()...); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	slog.Debug("store migrated", "dialect", s.dialect)
	return nil
}
