// Command embedded is a Go web app that runs phoneverify in its own
// process: the verification API is mounted under /verify/ on the app's
// mux, next to the app's own pages, with SQLite beside it and the log
// gateway printing each SMS to standard error.
//
//	go run ./examples/embedded
//	curl -s localhost:8090/verify/v1/verifications -H 'Authorization: Bearer dev-key-0123456789' \
//	  -H 'Content-Type: application/json' -d '{"to":"+14155552671"}'
//
// The app could call srv.Engine directly instead of over HTTP; mounting the
// handler lets its browser or mobile clients use the API as they would a
// stand-alone phoneverify.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	pvlog "github.com/phoneverify/phoneverify/gateway/log"
	"github.com/phoneverify/phoneverify/server"
	"github.com/phoneverify/phoneverify/store"
)

// apiKey is a development bootstrap key; a real app creates keys with
// srv.Engine.CreateAPIKey and keeps them out of its source.
const apiKey = "dev-key-0123456789"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, "127.0.0.1:8090", ".", os.Stderr, nil); err != nil {
		log.Fatal(err)
	}
}

// run serves the app on addr with its database in dir until ctx ends;
// messages go to sms. When listening, it sends the address to ready.
func run(ctx context.Context, addr, dir string, sms io.Writer, ready chan<- string) error {
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "embedded.db"), store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	secret, err := loadSecret(filepath.Join(dir, "embedded.secret"))
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Config{
		Store: st, Secret: secret, Sender: pvlog.New(sms),
		ServiceName: "Example shop", APIKey: apiKey,
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	// The API's routes start with /v1/…; under /verify/ they are
	// /verify/v1/verifications and so on.
	mux.Handle("/verify/", http.StripPrefix("/verify", srv.Handler))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "The app's own page. Phone verification lives under /verify/.")
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	workers, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(workers) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown)
	}()
	err = hs.Serve(ln)
	stopWorkers()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// loadSecret reads the server secret, creating a random one (mode 0600) on
// first start.
func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, os.WriteFile(path, b, 0o600)
}
