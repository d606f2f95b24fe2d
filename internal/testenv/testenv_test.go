package testenv

import (
	"context"
	"database/sql"
	"net/url"
	"strings"
	"testing"
)

// TestNewPostgresDatabase: the database exists, is empty, is named in the
// returned URL, and differs per call.
func TestNewPostgresDatabase(t *testing.T) {
	a, b := NewPostgresDatabase(t), NewPostgresDatabase(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	u, err := url.Parse(a)
	if err != nil || !strings.HasPrefix(u.Path, "/pvtest_") {
		t.Fatalf("URL %q does not name a pvtest_ database", a)
	}
	db, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(context.Background(),
		"SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("new database has %d tables, want 0", tables)
	}
}
