package gwenv_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoneverify/phoneverify/gateway/gwenv"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withNewline := write("nl", "s3cret\n")
	withCRLF := write("crlf", "s3cret\r\n")
	inner := write("inner", "line1\nline2\n")
	empty := write("empty", "\n")

	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "unset", env: nil, want: ""},
		{name: "inline", env: map[string]string{"X": "abc"}, want: "abc"},
		{name: "file trailing newline trimmed", env: map[string]string{"X_FILE": withNewline}, want: "s3cret"},
		{name: "file CRLF trimmed", env: map[string]string{"X_FILE": withCRLF}, want: "s3cret"},
		{name: "file inner newlines kept", env: map[string]string{"X_FILE": inner}, want: "line1\nline2"},
		{name: "both set", env: map[string]string{"X": "a", "X_FILE": withNewline}, wantErr: "either X or X_FILE"},
		{name: "missing file", env: map[string]string{"X_FILE": filepath.Join(dir, "nope")}, wantErr: "reading X_FILE"},
		{name: "empty file", env: map[string]string{"X_FILE": empty}, wantErr: "empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := gwenv.Secret(env(tt.env), "X")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error leaks the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		required    []gwenv.Var
		optional    []gwenv.Var
		wantEnabled bool
		wantErr     []string
	}{
		{
			name:     "nothing set",
			required: []gwenv.Var{{Name: "A"}, {Name: "B"}},
		},
		{
			name:        "all set",
			required:    []gwenv.Var{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}},
			wantEnabled: true,
		},
		{
			name:     "one missing",
			required: []gwenv.Var{{Name: "A", Value: "1"}, {Name: "B", Secret: true}},
			wantErr:  []string{"B (or B_FILE) is not set", "A is set"},
		},
		{
			name:     "two missing",
			required: []gwenv.Var{{Name: "A"}, {Name: "B", Value: "x"}, {Name: "C"}},
			wantErr:  []string{"A, C are not set", "B is set"},
		},
		{
			name:     "only optional set",
			required: []gwenv.Var{{Name: "A"}},
			optional: []gwenv.Var{{Name: "URL", Value: "http://x"}},
			wantErr:  []string{"URL is set but A is not set"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enabled, err := gwenv.Check(tt.required, tt.optional)
			if len(tt.wantErr) > 0 {
				if !errors.Is(err, gwenv.ErrIncomplete) {
					t.Fatalf("err = %v, want ErrIncomplete", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %q, want containing %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if enabled != tt.wantEnabled {
				t.Fatalf("enabled = %v, want %v", enabled, tt.wantEnabled)
			}
		})
	}
}
