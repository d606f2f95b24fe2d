package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations holds the schema, one directory of goose SQL files per dialect.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

const (
	// migrationTable is goose's version table, named for phoneverify so
	// that it cannot collide with another application's goose table in a
	// shared database.
	migrationTable = "phoneverify_migrations"
	// migrationLockID is the PostgreSQL advisory lock that makes nodes
	// migrating at once take turns: crc32 of "phoneverify".
	migrationLockID = 0xd847b3c5
)

// Migrate applies the migrations the database has not seen yet. On
// PostgreSQL it holds a session advisory lock meanwhile, so that several
// nodes starting at once migrate exactly once: the others wait, then find
// nothing left to do. On SQLite, calls on one Store take turns on its
// writer connection; two processes must not migrate one file at the same
// moment.
func (s *Store) Migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations/"+s.dialect)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(migrationTable),
		goose.WithDisableGlobalRegistry(true),
	}
	dialect := goose.DialectSQLite3
	if s.dialect == DialectPostgres {
		dialect = goose.DialectPostgres
		// Poll every second, for up to ten minutes, while another node
		// migrates.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 600))
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.db, dir, opts...)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return mapErr("migrate", err)
	}
	return nil
}
