package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// runConfig serves "phoneverify config check [flags]": it loads the
// configuration exactly as serve would (flags, environment, file,
// defaults), without connecting to anything, and prints each setting's
// effective value and where it came from, secrets as ***. An invalid
// configuration is an error listing every problem found.
func runConfig(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: phoneverify config check [--config FILE] [flags]")
		return errors.New("config: want the check subcommand")
	}
	cfg, rest, err := LoadConfig(getenv, newFlagSet("config check", stderr), args[1:])
	if err != nil {
		var b strings.Builder
		b.WriteString("invalid configuration:")
		for _, line := range strings.Split(err.Error(), "\n") {
			b.WriteString("\n  " + line)
		}
		return errors.New(b.String())
	}
	if len(rest) > 0 {
		return fmt.Errorf("config check: unexpected arguments %q", rest)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, s := range cfg.Sources {
		if s.From == "unset" {
			fmt.Fprintf(tw, "%s=\t# unset\n", s.Name)
			continue
		}
		fmt.Fprintf(tw, "%s=%s\t# %s\n", s.Name, quoteValue(s.Value), s.From)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "configuration OK")
	return nil
}

// quoteValue quotes a value that a configuration file would otherwise
// read differently (spaces at its ends, quotes, #), so that the output can
// be pasted into one.
func quoteValue(v string) string {
	if v == "" || strings.TrimSpace(v) != v || strings.ContainsAny(v, `"'#`) {
		if !strings.Contains(v, `"`) {
			return `"` + v + `"`
		}
		if !strings.Contains(v, `'`) {
			return `'` + v + `'`
		}
	}
	return v
}
