package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// EnvConfig names the configuration file (also --config). It is read only
// from the environment or the flag: a file cannot name another.
const EnvConfig = "PHONEVERIFY_CONFIG"

// configFile is a parsed configuration file: KEY=VALUE lines, the format of
// systemd's EnvironmentFile= and docker's --env-file, so one file serves
// all three. Blank lines and lines starting with # are skipped; "export " before
// a key is allowed; a value wrapped in matching single or double quotes
// loses them (there are no escapes); spaces around keys and unquoted
// values are trimmed.
type configFile struct {
	path   string
	values map[string]string
	lines  map[string]int
	// private is true when no one but the owner may read the file.
	private bool
}

// readConfigFile reads and parses the file at path.
func readConfigFile(path string) (*configFile, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("config file %s is not a regular file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	f, err := parseConfigFile(path, b)
	if err != nil {
		return nil, err
	}
	f.private = fi.Mode().Perm()&0o077 == 0
	return f, nil
}

func parseConfigFile(path string, b []byte) (*configFile, error) {
	f := &configFile{path: path, values: map[string]string{}, lines: map[string]int{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var errs []error
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" || line[0] == '#' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s:%d: want KEY=VALUE", path, n))
			continue
		case !validKey(key):
			errs = append(errs, fmt.Errorf("%s:%d: %q is not a variable name", path, n, key))
			continue
		case f.lines[key] != 0:
			errs = append(errs, fmt.Errorf("%s:%d: %s is already set on line %d", path, n, key, f.lines[key]))
			continue
		}
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') {
			if value[len(value)-1] != value[0] {
				errs = append(errs, fmt.Errorf("%s:%d: %s: unterminated quote", path, n, key))
				continue
			}
			value = value[1 : len(value)-1]
		}
		f.values[key], f.lines[key] = value, n
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	return f, errors.Join(errs...)
}

func validKey(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for _, c := range k {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// where names a key's place in the file, for sources and errors.
func (f *configFile) where(key string) string {
	return fmt.Sprintf("%s:%d", f.path, f.lines[key])
}

// check refuses keys that no setting or gateway reads (a typo must not
// pass silently), PHONEVERIFY_CONFIG itself, and secrets given inline in a
// file that others than its owner may read. known maps every key read to
// whether it is a secret given inline.
func (f *configFile) check(known map[string]bool) error {
	keys := make([]string, 0, len(f.values))
	for k := range f.values {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return f.lines[a] - f.lines[b] })
	var errs []error
	for _, k := range keys {
		secret, ok := known[k]
		switch {
		case k == EnvConfig:
			errs = append(errs, fmt.Errorf("%s: %s cannot be set in the config file", f.where(k), k))
		case !ok:
			errs = append(errs, fmt.Errorf("%s: unknown setting %s", f.where(k), k))
		case secret && f.values[k] != "" && !f.private:
			errs = append(errs, fmt.Errorf("%s: %s is a secret, but the file may be read by others than its owner: chmod 600 %s, or give it as %s_FILE", f.where(k), k, f.path, k))
		}
	}
	return errors.Join(errs...)
}
