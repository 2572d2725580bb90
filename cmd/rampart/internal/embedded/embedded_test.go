package embedded_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/embedded"
)

func TestDataDirIsExclusiveAndUsesWAL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := embedded.Start(ctx, embedded.Options{DataDir: dir, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	if _, err := embedded.Start(ctx, embedded.Options{DataDir: dir, Namespace: "default"}); !errors.Is(err, embedded.ErrDataDirLocked) {
		t.Fatalf("second server on the same data dir: %v, want ErrDataDirLocked", err)
	}

	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		t.Fatal(err)
	}

	// A WAL-mode database has a -wal file beside it and says so in its header
	// (bytes 18 and 19 are 2): the pragmas reached SQLite.
	db := filepath.Join(dir, embedded.DBFileName)
	header := make([]byte, 20)
	f, err := os.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ReadAt(header, 0)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if header[18] != 2 || header[19] != 2 {
		t.Fatalf("temporal.db is not in WAL mode (header versions %d/%d)", header[18], header[19])
	}

	// After a stop the dir is free again, and the server reopens the same file.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	again, err := embedded.Start(ctx, embedded.Options{DataDir: dir, Namespace: "default"})
	if err != nil {
		t.Fatalf("restart on the same data dir: %v", err)
	}
	_ = again.Stop()
}
