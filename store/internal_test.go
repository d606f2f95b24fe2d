package store

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, dialect, target string
	}{
		{"sqlite:///abs/path.db", DialectSQLite, "/abs/path.db"},
		{"sqlite://rel/path.db", DialectSQLite, "rel/path.db"},
		{"sqlite:rel.db", DialectSQLite, "rel.db"},
		{"SQLite:rel.db", DialectSQLite, "rel.db"},
		{"phoneverify.db", DialectSQLite, "phoneverify.db"},
		{"./data/phoneverify.db", DialectSQLite, "./data/phoneverify.db"},
		{"postgres://u:p@db:5432/pv?sslmode=disable", DialectPostgres, "postgres://u:p@db:5432/pv?sslmode=disable"},
		{"postgresql://db/pv", DialectPostgres, "postgresql://db/pv"},
	}
	for _, tt := range tests {
		dialect, target, err := parseURL(tt.url)
		if err != nil || dialect != tt.dialect || target != tt.target {
			t.Errorf("parseURL(%q) = %q, %q, %v; want %q, %q, nil", tt.url, dialect, target, err, tt.dialect, tt.target)
		}
	}
	for _, bad := range []string{"", "sqlite:", "sqlite://", "sqlite::memory:", ":memory:", "sqlite:file:x.db", "x.db?mode=ro", "mysql://h/db"} {
		if dialect, target, err := parseURL(bad); err == nil {
			t.Errorf("parseURL(%q) = %q, %q, nil; want an error", bad, dialect, target)
		}
	}
}

func TestUnixMilli(t *testing.T) {
	t.Parallel()
	if got := fromUnixMilli(unixMilli(time.Time{})); !got.IsZero() {
		t.Errorf("zero time reads back as %v, want the zero time", got)
	}
	if got, want := (time.Time{}).UnixMilli(), int64(zeroUnixMilli); got != want {
		t.Errorf("zeroUnixMilli = %d, want %d", want, got)
	}
	in := time.Date(2025, 1, 2, 3, 4, 5, 678_901_234, time.FixedZone("NPT", 5*3600+45*60))
	want := time.Date(2025, 1, 1, 21, 19, 5, 678_000_000, time.UTC)
	if got := normalTime(in); got != want {
		t.Errorf("normalTime(%v) = %v, want %v", in, got, want)
	}
}

func TestSends(t *testing.T) {
	t.Parallel()
	base := time.UnixMilli(1_700_000_000_123).UTC()
	tests := []struct {
		name  string
		sends []time.Time
		enc   string
	}{
		{"none", nil, ""},
		{"one", []time.Time{base}, "1700000000123"},
		{"three", []time.Time{base, base.Add(time.Second), base.Add(time.Minute)}, "1700000000123 1700000001123 1700000060123"},
	}
	for _, tt := range tests {
		if got := encodeSends(tt.sends); got != tt.enc {
			t.Errorf("%s: encodeSends = %q, want %q", tt.name, got, tt.enc)
		}
		got, err := decodeSends(tt.enc)
		if err != nil || !slices.EqualFunc(got, tt.sends, time.Time.Equal) {
			t.Errorf("%s: decodeSends = %v, %v; want %v", tt.name, got, err, tt.sends)
		}
	}
	if _, err := decodeSends("12 x"); err == nil {
		t.Errorf("decodeSends(bad) = nil error, want an error")
	}
}

func TestSQLitePath(t *testing.T) {
	tests := []struct {
		url, want string
		ok        bool
	}{
		{"sqlite:phoneverify.db", "phoneverify.db", true},
		{"sqlite:///var/lib/pv/db.sqlite", "/var/lib/pv/db.sqlite", true},
		{"data/pv.db", "data/pv.db", true},
		{"postgres://postgres@127.0.0.1/pv", "", false},
		{"mysql://x", "", false},
	}
	for _, tt := range tests {
		got, ok := SQLitePath(tt.url)
		if got != tt.want || ok != tt.ok {
			t.Errorf("SQLitePath(%q) = %q, %v; want %q, %v", tt.url, got, ok, tt.want, tt.ok)
		}
	}
}

// TestSQLiteStartReadsUseIndexes checks the query plans of the reads every
// start makes on SQLite: each must search an index by the whole key, not
// walk the service's rows — a cost that would grow with the data.
func TestSQLiteStartReadsUseIndexes(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "plan.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+qSelectStartRegistry, "VA1", "+9779800000000", "user")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	for _, want := range []string{
		"SEARCH verified_phones USING COVERING INDEX verified_phones_phone (service_id=? AND phone=?)",
		"SEARCH verified_phones USING PRIMARY KEY (service_id=? AND subject=?)",
	} {
		if !slices.Contains(plan, want) {
			t.Errorf("the start's registry read does not %q; plan:\n%s", want, strings.Join(plan, "\n"))
		}
	}
}
