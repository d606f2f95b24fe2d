package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/phoneverify/phoneverify/phone"
)

// assets holds the templates and the style sheet: the binary needs no
// files beside it.
//
//go:embed templates/*.html static/*
var assets embed.FS

// view is what every page template receives.
type view struct {
	// Section is "demo" or "admin"; it picks the navigation and the
	// assets' path.
	Section string
	Title   string
	// Nav names the current navigation entry.
	Nav string
	// CSRF is the token every form posts back.
	CSRF string
	// User names who is signed in, if anyone.
	User string
	// Notice is a confirmation shown at the top of the page; Alert an
	// error about the page as a whole.
	Notice, Alert string
	// Errors holds the error message of each form field at fault, and
	// Form the values to show again.
	Errors map[string]string
	Form   map[string]string
	// Dev, in development only, is the message the log gateway sent.
	Dev *devMessage
	// Data is the page's own data.
	Data any
}

// devMessage is what the development inbox panel shows.
type devMessage struct {
	To     string
	Body   string
	SentAt time.Time
	// Missing is set when no message arrived in time.
	Missing bool
}

type renderer struct {
	pages map[string]*template.Template
}

// templateFuncs returns the functions the templates may call.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"mask": phone.Mask,
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"clock": func(t time.Time) string { return t.UTC().Format("15:04:05 UTC") },
		"pct":   func(f float64) string { return fmt.Sprintf("%.1f %%", f*100) },
		"join":  strings.Join,
		"statusLabel": func(s string) string {
			return strings.ReplaceAll(s, "_", " ")
		},
		// codefield packs the arguments of the "codefield" template.
		"codefield": func(v *view, name, label string) map[string]any {
			return map[string]any{"Name": name, "Label": label, "Error": v.Errors[name]}
		},
		// field packs the arguments of the "field" template.
		"field": func(v *view, name, label, typ, autocomplete, hint string) map[string]any {
			return map[string]any{"Name": name, "Label": label, "Type": typ, "Autocomplete": autocomplete,
				"Hint": hint, "Value": v.Form[name], "Error": v.Errors[name]}
		},
	}
}

// newRenderer parses each page with the layout and the shared partials.
func newRenderer() (*renderer, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	r := &renderer{pages: map[string]*template.Template{}}
	for _, path := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(path, "templates/"), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.New(name).Funcs(templateFuncs()).ParseFS(assets, "templates/layout.html", "templates/partials.html", path)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", path, err)
		}
		r.pages[name] = t
	}
	return r, nil
}

// render writes a page. It renders into a buffer first, so that a template
// error answers 500 rather than half a page.
func (r *renderer) render(w http.ResponseWriter, status int, page string, v *view) {
	t, ok := r.pages[page]
	if !ok {
		http.Error(w, "An internal error occurred.", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		http.Error(w, "An internal error occurred.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages hold codes (in development), keys shown once and personal
	// data: no cache may keep them.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// serveStatic serves the embedded style sheet.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("static/style.css")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(b)
}
