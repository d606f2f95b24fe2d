package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SQLite's WAL is copied back into the database file by checkpoints. Left
// to SQLite, the connection that commits when the WAL passes 1,000 pages
// runs the checkpoint, with its fsyncs, before it returns: with one writer
// shared by every request (the group commit), each such commit stalled all
// writes for tens of milliseconds. Measured with `phoneverify bench` at
// half of the top rate, p99 went from 20–47 ms with SQLite's checkpoints
// to 13–16 ms with none in the writer, and the top rate rose about 15 %.
// So a connection of the store's own checkpoints in the background, in
// PASSIVE mode, which never blocks the writer or readers; the writer
// still checkpoints itself past writerAutoCheckpoint pages, should the
// background ever fall behind, so that the WAL stays bounded.
const (
	// DefaultCheckpointInterval is how often the background checkpoint
	// runs where [Options.CheckpointInterval] is zero.
	DefaultCheckpointInterval = 250 * time.Millisecond
	// writerAutoCheckpoint is the writer's own threshold, in pages (64 MiB
	// of 4 KiB pages).
	writerAutoCheckpoint = 16384
)

// walCheckpointer runs PRAGMA wal_checkpoint(PASSIVE) on its own
// connection every interval until closed.
type walCheckpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
}

// startCheckpointer opens the checkpoint connection to the SQLite file at
// dsn and, if interval is positive, starts the background loop.
func startCheckpointer(ctx context.Context, dsn string, interval time.Duration) (*walCheckpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open SQLite checkpoint connection: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, mapErr("open SQLite checkpoint connection", err)
	}
	c := &walCheckpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	if interval <= 0 {
		close(c.done)
		return c, nil
	}
	go c.run(interval)
	return c, nil
}

func (c *walCheckpointer) run(interval time.Duration) {
	defer close(c.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// An error (the file busy with another checkpoint, a full
			// disk) is left to the next tick, and to the writer's own
			// checkpoints past writerAutoCheckpoint; the writes it would
			// report fail on the writer too.
			_, _, _ = c.checkpoint(context.Background())
		}
	}
}

// checkpoint copies what it can of the WAL into the database file without
// waiting for any lock. It returns the frames in the WAL and how many of
// them are now in the database file.
func (c *walCheckpointer) checkpoint(ctx context.Context) (walFrames, checkpointed int, err error) {
	var busy int
	err = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &walFrames, &checkpointed)
	if err != nil {
		return 0, 0, mapErr("checkpoint SQLite WAL", err)
	}
	return walFrames, checkpointed, nil
}

// close stops the loop and closes the connection.
func (c *walCheckpointer) close() error {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	return c.db.Close()
}
