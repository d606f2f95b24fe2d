package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCheckpointer: the writer no longer checkpoints at SQLite's 1,000
// pages, and the store's own checkpoint copies the whole WAL into the
// database file without any lock.
func TestCheckpointer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pv.db")
	s, err := Open(ctx, path, Options{CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var auto int
	if err := s.db.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != writerAutoCheckpoint {
		t.Errorf("writer's wal_autocheckpoint = %d, want %d", auto, writerAutoCheckpoint)
	}
	frames, done, err := s.ckpt.checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if frames == 0 || done != frames {
		t.Errorf("checkpoint after the migrations: %d of %d frames copied, want all of a non-empty WAL", done, frames)
	}
}

// TestBackgroundCheckpoint: with the loop on, what the migrations wrote
// reaches the database file without any checkpoint called by hand (the
// file stays empty while everything is in the WAL).
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pv.db")
	s, err := Open(ctx, path, Options{CheckpointInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 64*1024 { // the schema's pages
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes 20 s after the migrations: the background checkpoint did not run", fi.Size())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
}
