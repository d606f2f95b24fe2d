package twilioapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	pv "github.com/phoneverify/phoneverify"
)

// MaxBodyBytes is the largest request body the API reads.
const MaxBodyBytes = 64 << 10

// readForm returns a request's parameters: the form-encoded body of a POST,
// the query string of anything else. A GET or DELETE may carry
// Content-Type: application/x-www-form-urlencoded (twilio-go sends it), and
// its body is ignored.
func readForm(w http.ResponseWriter, r *http.Request) (*form, error) {
	if r.Method != http.MethodPost {
		v, err := decodeForm([]byte(r.URL.RawQuery))
		return &form{v: v}, err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, pv.Errorf(pv.EUnsupportedMediaType, "Send the parameters as application/x-www-form-urlencoded.")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, pv.Errorf(pv.ERequestTooLarge, "The request body is larger than %d KiB.", MaxBodyBytes>>10)
		}
		return nil, &pv.Error{Code: pv.EInvalidRequest, Message: "The request body could not be read.", Err: err}
	}
	v, err := decodeForm(body)
	return &form{v: v}, err
}

// decodeForm parses form-encoded parameters. Malformed escapes, text that
// is not UTF-8 and NUL characters are refused with EInvalidRequest naming
// the parameter where it can.
func decodeForm(body []byte) (url.Values, error) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &pv.Error{Code: pv.EInvalidRequest, Message: "The parameters are not valid form encoding.", Err: err}
	}
	for name, values := range v {
		if !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
			return nil, pv.Errorf(pv.EInvalidRequest, "A parameter name is not valid UTF-8 text.")
		}
		for _, s := range values {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				return nil, pv.ParamErrorf(pv.EInvalidRequest, name, "The value must be UTF-8 text without NUL characters.")
			}
		}
	}
	return v, nil
}

// form reads typed parameters; the first bad one is kept in err so that a
// handler reads every parameter, then checks once.
type form struct {
	v   url.Values
	err error
}

func (f *form) has(name string) bool { _, ok := f.v[name]; return ok }

// str returns a parameter's first value.
func (f *form) str(name string) string { return f.v.Get(name) }

// boolean returns a parameter as a bool, or nil if it is absent.
func (f *form) boolean(name string) *bool {
	if !f.has(name) {
		return nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(f.v.Get(name)))
	if err != nil {
		f.fail(name, "must be true or false")
		return nil
	}
	return &b
}

// integer returns a parameter as an int, or nil if it is absent.
func (f *form) integer(name string) *int {
	if !f.has(name) {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(f.v.Get(name)))
	if err != nil {
		f.fail(name, "must be a whole number")
		return nil
	}
	return &n
}

// time returns a parameter in ISO 8601 (RFC 3339), or the zero time.
func (f *form) time(name string) time.Time {
	s := f.v.Get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		f.fail(name, "must be a date and time such as 2024-05-01T12:00:00Z")
		return time.Time{}
	}
	return t
}

// object returns a parameter holding a JSON object whose values are
// strings or numbers (RateLimits), as strings; nil if absent.
func (f *form) object(name string) map[string]string {
	s := f.v.Get(name)
	if !f.has(name) || strings.TrimSpace(s) == "" {
		return nil
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(s), &raw); err != nil || raw == nil {
		f.fail(name, "must be a JSON object")
		return nil
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out[k] = v
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			out[k] = strconv.FormatBool(v)
		default:
			f.fail(name, "must hold only strings and numbers")
			return nil
		}
	}
	return out
}

// json checks that a parameter, when present, holds JSON (Tags,
// ChannelConfiguration: accepted and not acted on).
func (f *form) json(name string) {
	if s := f.v.Get(name); s != "" && !json.Valid([]byte(s)) {
		f.fail(name, "must be JSON")
	}
}

func (f *form) fail(name, what string) {
	if f.err == nil {
		f.err = pv.ParamErrorf(pv.EInvalidRequest, name, "%s %s.", name, what)
	}
}
