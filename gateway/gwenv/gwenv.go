// Package gwenv reads gateway settings from environment variables, the way
// every gateway package's ConfigFromEnv does: secrets may be given inline or
// as NAME_FILE (the path of a file holding the secret), and a gateway whose
// variables are only partly set is an error that names what is missing.
//
// The getenv argument is os.Getenv in production and a map lookup in tests;
// nothing here reads the process environment by itself.
package gwenv

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// FileSuffix is appended to a variable's name to give the path of a file
// holding its value instead.
const FileSuffix = "_FILE"

// ErrIncomplete is wrapped by [Check] when some of a gateway's variables are
// set but a required one is not.
var ErrIncomplete = errors.New("incomplete gateway configuration")

// Secret returns the value of the variable name or, when name is empty and
// name+"_FILE" is set, the content of that file with trailing newline
// characters (\n, \r) removed. It returns "" when neither is set.
//
// Setting both forms is an error, and so is a _FILE that cannot be read or
// holds nothing. Errors name the variables and the path, never the content.
func Secret(getenv func(string) string, name string) (string, error) {
	inline := getenv(name)
	path := getenv(name + FileSuffix)
	switch {
	case path == "":
		return inline, nil
	case inline != "":
		return "", fmt.Errorf("gwenv: set either %s or %s%s, not both", name, name, FileSuffix)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("gwenv: reading %s%s: %w", name, FileSuffix, err)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("gwenv: %s%s names an empty file %q", name, FileSuffix, path)
	}
	return v, nil
}

// Var is one variable a gateway reads, with the value it was given.
type Var struct {
	Name  string
	Value string
	// Secret marks a variable that can also be given as Name_FILE, so that
	// error messages mention both spellings.
	Secret bool
}

func (v Var) spelling() string {
	if v.Secret {
		return v.Name + " (or " + v.Name + FileSuffix + ")"
	}
	return v.Name
}

// Check decides whether a gateway is enabled. It returns false when none of
// required and optional is set, true when every required variable is set,
// and an error wrapping [ErrIncomplete] that names the missing required
// variables (and one that is set) when only some are.
func Check(required, optional []Var) (enabled bool, err error) {
	var missing []string
	set := ""
	for _, v := range required {
		if v.Value == "" {
			missing = append(missing, v.spelling())
		} else if set == "" {
			set = v.Name
		}
	}
	for _, v := range optional {
		if v.Value != "" && set == "" {
			set = v.Name
		}
	}
	switch {
	case set == "":
		return false, nil
	case len(missing) == 0:
		return true, nil
	}
	verb := "are"
	if len(missing) == 1 {
		verb = "is"
	}
	return false, fmt.Errorf("%w: %s is set but %s %s not set", ErrIncomplete, set, strings.Join(missing, ", "), verb)
}
