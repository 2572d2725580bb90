package store

import (
	"context"
	"database/sql"
	"sync"

	"gorm.io/gorm"
)

// maxCachedStatements bounds the statement cache. Queries whose text varies with
// their arguments (IN lists, batches) can each be a new statement; past the
// bound a statement runs unprepared rather than evicting one in use.
const maxCachedStatements = 256

// stmtPool is the connection pool gorm runs on. It prepares each statement once
// on the database and lets database/sql reuse it per connection, inside
// transactions as well as outside. gorm's own PrepareStmt mode prepares a
// statement first met inside a transaction on that transaction alone, and
// database/sql then prepares it anew in every later transaction
// (go-gorm/gorm#4644, golang/go#28130): every write of an activity was parsed
// again each time.
//
// On SQLite it also admits one write transaction at a time. SQLite allows one
// writer; a second one that finds the lock taken sleeps in the busy handler for
// 1, 2, 5, 10… ms before trying again, however soon the lock is released, and
// under load those sleeps were most of a store write's latency. Waiting here
// wakes the next writer the moment the last one ends. (Every write of the store
// is a transaction: Store.atomically. Another process writing the same file
// still meets the busy handler.)
type stmtPool struct {
	db *sql.DB
	// writer is a one-slot semaphore held by a transaction from begin to end;
	// nil when the database takes concurrent writers (PostgreSQL).
	writer chan struct{}

	mu        sync.RWMutex
	stmts     map[string]*sql.Stmt
	preparing map[string]bool
	closed    bool
	// background counts the prepares stmtInTx started, which close waits for:
	// one still holding a connection after Close would touch a database file
	// its owner has already removed.
	background sync.WaitGroup
}

func newStmtPool(db *sql.DB, oneWriter bool) *stmtPool {
	p := &stmtPool{db: db, stmts: map[string]*sql.Stmt{}, preparing: map[string]bool{}}
	if oneWriter {
		p.writer = make(chan struct{}, 1)
	}
	return p
}

// stmt returns the prepared statement for query, preparing it first if need be;
// nil means the query runs unprepared (cache full, or preparing failed: running
// it reports the error).
func (p *stmtPool) stmt(ctx context.Context, query string) *sql.Stmt {
	if s := p.cached(query); s != nil {
		return s
	}
	return p.prepare(ctx, query)
}

// stmtInTx is stmt for a transaction, which holds a connection: preparing there
// would wait for a second one, and transactions that all wait so would never get
// it. A statement not cached yet runs unprepared, and is prepared in the
// background for the next time.
func (p *stmtPool) stmtInTx(query string) *sql.Stmt {
	if s := p.cached(query); s != nil {
		return s
	}
	p.mu.Lock()
	start := !p.preparing[query] && !p.closed && len(p.stmts) < maxCachedStatements
	if start {
		p.preparing[query] = true
		p.background.Add(1)
	}
	p.mu.Unlock()
	if start {
		go func() {
			defer p.background.Done()
			p.prepare(context.Background(), query)
			p.mu.Lock()
			delete(p.preparing, query)
			p.mu.Unlock()
		}()
	}
	return nil
}

func (p *stmtPool) cached(query string) *sql.Stmt {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.stmts[query]
}

// prepare prepares query on the database, without holding the cache's lock
// meanwhile, and caches it unless the cache is full or closed.
func (p *stmtPool) prepare(ctx context.Context, query string) *sql.Stmt {
	p.mu.RLock()
	full := p.closed || len(p.stmts) >= maxCachedStatements
	p.mu.RUnlock()
	if full {
		return nil
	}
	s, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if have := p.stmts[query]; have != nil || p.closed || len(p.stmts) >= maxCachedStatements {
		_ = s.Close() // another caller prepared it first, or there is no room
		return have
	}
	p.stmts[query] = s
	return s
}

func (p *stmtPool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.db.PrepareContext(ctx, query)
}

func (p *stmtPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := p.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return p.db.ExecContext(ctx, query, args...)
}

func (p *stmtPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := p.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return p.db.QueryContext(ctx, query, args...)
}

func (p *stmtPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := p.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return p.db.QueryRowContext(ctx, query, args...)
}

// BeginTx starts a transaction whose statements come from the same cache, once it
// is this transaction's turn to write; a read-only one does not wait for a turn.
func (p *stmtPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	release := func() {}
	if p.writer != nil && (opts == nil || !opts.ReadOnly) {
		select {
		case p.writer <- struct{}{}:
			release = func() { <-p.writer }
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil {
		release()
		return nil, err
	}
	return &stmtTx{tx: tx, pool: p, release: release}, nil
}

// GetDBConn gives gorm's DB() the underlying pool (Ping, Close, limits).
func (p *stmtPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

// close waits for background prepares, then closes the cached statements; none
// is cached after it.
func (p *stmtPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.background.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for q, s := range p.stmts {
		_ = s.Close()
		delete(p.stmts, q)
	}
}

// stmtTx is one transaction. Tx.StmtContext binds a cached statement to the
// transaction's connection, reusing the statement prepared there before.
type stmtTx struct {
	tx      *sql.Tx
	pool    *stmtPool
	release func() // ends the transaction's turn to write
	ended   bool
}

func (t *stmtTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, query)
}

func (t *stmtTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.pool.stmtInTx(query); s != nil {
		return t.tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *stmtTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.pool.stmtInTx(query); s != nil {
		return t.tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t *stmtTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.pool.stmtInTx(query); s != nil {
		return t.tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (t *stmtTx) Commit() error {
	defer t.end()
	return t.tx.Commit()
}

func (t *stmtTx) Rollback() error {
	defer t.end()
	return t.tx.Rollback()
}

// end gives up the turn to write once, however often gorm ends the transaction.
func (t *stmtTx) end() {
	if !t.ended {
		t.ended = true
		t.release()
	}
}
