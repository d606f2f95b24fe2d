package storetest_test

import (
	"path/filepath"
	"testing"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/store/storetest"
)

// TestRunOnSQLite runs the suite the way an embedding project would, on a
// SQLite file: it documents the suite's entry point and keeps it compiling.
func TestRunOnSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) phoneverify.Store {
		s, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "pv.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}
