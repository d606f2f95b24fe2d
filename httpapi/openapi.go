package httpapi

import (
	_ "embed"
	"net/http"
	"slices"
	"strings"
)

// OpenAPI is the OpenAPI 3.1 description of the native API, served at
// /openapi.json, from which clients in any language can be generated.
//
//go:embed openapi.json
var OpenAPI []byte

func (h *Handler) getOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(OpenAPI)
}

// Routes returns the pattern ("METHOD /path") of every route the handler
// serves, sorted: the list the OpenAPI description must cover.
func (h *Handler) Routes() []string {
	var out []string
	for path, methods := range h.methods {
		for _, m := range methods {
			out = append(out, m+" "+path)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		_, pa, _ := strings.Cut(a, " ")
		_, pb, _ := strings.Cut(b, " ")
		return strings.Compare(pa+a, pb+b)
	})
	return out
}

// Codes returns every stable error code the API answers with, sorted.
func Codes() []string {
	out := make([]string, 0, len(statusOf))
	for c := range statusOf {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
