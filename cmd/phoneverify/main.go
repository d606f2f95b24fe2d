// Command phoneverify runs the phone-verification service and its
// administration subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	pv "github.com/phoneverify/phoneverify"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "phoneverify:", describe(err))
		}
		os.Exit(1)
	}
}

const usage = `phoneverify — self-hosted phone-number verification

Usage:
  phoneverify [serve] [flags]          run the HTTP API (the default)
  phoneverify migrate [flags]          apply database migrations and exit
  phoneverify apikey create --name N [--service ID] [--scopes a,b | --twilio]
  phoneverify apikey list
  phoneverify apikey revoke ID
  phoneverify service list
  phoneverify service create --name N [settings]
  phoneverify service update ID|default [settings]
  phoneverify keys rotate              start signing with a new key
  phoneverify bench [flags]            load test nodes on this machine (bench -h)
  phoneverify purge                    delete records older than PHONEVERIFY_RETENTION, once
  phoneverify config check [flags]     validate the configuration, print it with sources
  phoneverify version

Every flag has an environment variable PHONEVERIFY_<FLAG>, and every
variable may be set in a KEY=VALUE file named by --config or
PHONEVERIFY_CONFIG (flags > environment > file > defaults); run
"phoneverify serve -h" for the list.
`

// run dispatches a subcommand. It is main without the process: tests call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stderr)
	case "migrate":
		return runMigrate(ctx, args, getenv, stdout, stderr)
	case "apikey":
		return runAPIKey(ctx, args, getenv, stdout, stderr)
	case "service":
		return runService(ctx, args, getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, args, getenv, stdout, stderr)
	case "bench":
		return runBench(ctx, args, getenv, stdout, stderr)
	case "purge":
		return runPurge(ctx, args, getenv, stdout, stderr)
	case "config":
		return runConfig(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "phoneverify", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("phoneverify "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, rest, err := LoadConfig(getenv, newFlagSet("serve", stderr), args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("serve: unexpected arguments %q", rest)
	}
	m := NewMain(cfg, stderr)
	if err := m.Open(ctx); err != nil {
		m.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- m.Serve() }()
	select {
	case <-ctx.Done():
		m.log.Info("shutting down")
	case err = <-errc:
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return err
}

// describe renders an error for an operator: a domain error by its message
// (and parameter), anything else in full.
func describe(err error) string {
	if e := pv.AsError(err); e != nil && e.Code != pv.EInternal && e.Code != pv.EUnavailable {
		if e.Param != "" {
			return e.Message + " (" + e.Param + ")"
		}
		return e.Message
	}
	return err.Error()
}
