// Package storetest opens throwaway stores for tests: a SQLite file in the test's
// temp dir, or a fresh schema in the PostgreSQL database RAMPART_TEST_POSTGRES_DSN
// names. It may import store and the standard library.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for schema setup

	"github.com/rampart-soar/rampart/store"
)

// PostgresEnv names the DSN of a database tests may create schemas in.
const PostgresEnv = "RAMPART_TEST_POSTGRES_DSN"

// SQLite returns a migrated store on a new SQLite file.
func SQLite(t testing.TB) *store.Store {
	t.Helper()
	return open(t, filepath.Join(t.TempDir(), "rampart.db"))
}

// Postgres returns a migrated store in a new schema of the test database. Without
// RAMPART_TEST_POSTGRES_DSN it skips, or fails when RAMPART_REQUIRE_POSTGRES=1 (CI).
func Postgres(t testing.TB) *store.Store {
	t.Helper()
	return open(t, PostgresDSN(t))
}

// PostgresDSN creates a fresh schema in the test database and returns a DSN whose
// search_path selects it; the schema is dropped when the test ends. It skips like
// Postgres does.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresEnv)
	if dsn == "" {
		if os.Getenv("RAMPART_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("%s is not set but RAMPART_REQUIRE_POSTGRES=1", PostgresEnv)
		}
		t.Skipf("%s not set: skipping the PostgreSQL run", PostgresEnv)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "rampart_test_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("postgres: create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		_ = admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("postgres dsn: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Each runs fn once per dialect, as subtests named sqlite and postgres.
func Each(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

func open(t testing.TB, dsn string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}
