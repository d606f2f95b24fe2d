package metrics

import (
	"net/http"
	"time"
)

// Unmatched is the route label of a request no route took (a 404 or a
// 405): raw paths would give every scanner's guesses a series of their own.
const Unmatched = "unmatched"

// Middleware counts and times every request that next answers, labelled
// by the ServeMux pattern that route returns for it ("POST
// /v1/verifications", "GET /v2/Services/{ServiceSid}") and the status code.
// route is asked before the request is served; it returns "" when no route
// matches. after, when not nil, is called once the request is answered,
// with the pattern and status it was counted under: the node writes its
// request log line there, so that each request's route is found and its
// status recorded once.
func (m *Metrics) Middleware(route func(r *http.Request) string, next http.Handler,
	after func(r *http.Request, pattern string, code int, took time.Duration)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pattern := route(r)
		if pattern == "" {
			pattern = Unmatched
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			if p := recover(); p != nil {
				// The connection is dropped (http.ErrAbortHandler or a
				// panic nothing recovered): count it as what the server
				// answers, then let net/http do its part.
				if sw.code == 0 {
					code = http.StatusInternalServerError
				}
				m.observeRequest(pattern, code, time.Since(start))
				panic(p)
			}
			took := time.Since(start)
			m.observeRequest(pattern, code, took)
			if after != nil {
				after(r, pattern, code, took)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

func (m *Metrics) observeRequest(pattern string, code int, took time.Duration) {
	m.requests.WithLabelValues(pattern, statusLabel(code)).Inc()
	m.latency.WithLabelValues(pattern).Observe(took.Seconds())
}

// statusWriter remembers the status code written. Unwrap lets
// http.ResponseController reach the connection's Flush and deadlines.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Router finds the pattern of a request the way a ServeMux would serve it.
// [httpapi.Handler] and [twilioapi.Handler] implement it for their own
// routes, so that a request reaching them through an outer mux is
// labelled with the inner pattern.
type Router interface {
	Pattern(r *http.Request) string
}

// MuxRoute returns a route function for [Metrics.Middleware] over mux:
// the pattern mux matches, or, when the handler it picks is a [Router],
// that handler's own pattern for the request.
func MuxRoute(mux *http.ServeMux) func(r *http.Request) string {
	return func(r *http.Request) string {
		h, pattern := mux.Handler(r)
		if rt, ok := h.(Router); ok {
			return rt.Pattern(r)
		}
		return pattern
	}
}
