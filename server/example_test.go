package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	pvlog "github.com/phoneverify/phoneverify/gateway/log"
	"github.com/phoneverify/phoneverify/server"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/verify"
)

// Example embeds phoneverify: the engine is used directly, and the API is
// mounted under /verify/ on the program's own mux.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "pv-example")
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "verify.db"), store.Options{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		panic(err)
	}
	srv, err := server.New(ctx, server.Config{
		Store: st, Secret: []byte("an example secret of at least 32 bytes"), Sender: pvlog.New(os.Stderr),
		APIKey:      "example-key-0123456789",
		TestNumbers: map[string]string{"+15005550006": "123456"}, // fixed code, nothing sent
	})
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- srv.Run(runCtx) }()
	defer func() { stop(); <-done }()

	// In Go, without HTTP.
	v, err := srv.Engine.Start(ctx, verify.StartRequest{ServiceID: srv.DefaultService.ID, To: "+15005550006"})
	if err != nil {
		panic(err)
	}
	fmt.Println(v.Status)

	// Over HTTP, as the program's clients would.
	mux := http.NewServeMux()
	mux.Handle("/verify/", http.StripPrefix("/verify", srv.Handler))
	req := httptest.NewRequest("POST", "/verify/v1/verifications/check",
		strings.NewReader(`{"id":"`+v.ID+`","code":"123456"}`))
	req.Header.Set("Authorization", "Bearer example-key-0123456789")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code, strings.Contains(w.Body.String(), `"status":"approved"`))
	// Output:
	// pending
	// 200 true
}
