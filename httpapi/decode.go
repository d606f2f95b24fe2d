package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	pv "github.com/phoneverify/phoneverify"
)

// MaxBodyBytes is the largest request body the API reads.
const MaxBodyBytes = 64 << 10

// decodeJSON reads one JSON object into dst. Unknown fields, wrong types,
// trailing data, bodies over MaxBodyBytes and non-JSON content types are
// refused with an error that names the problem.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return pv.Errorf(pv.EUnsupportedMediaType, "Send the request body as application/json.")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return pv.Errorf(pv.ERequestTooLarge, "The request body is larger than %d KiB.", MaxBodyBytes>>10)
		}
		return &pv.Error{Code: pv.EInvalidRequest, Message: "The request body could not be read.", Err: err}
	}
	return decodeBody(body, dst)
}

// decodeBody is decodeJSON without the HTTP parts, so fuzzing can reach it.
func decodeBody(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return pv.Errorf(pv.EInvalidRequest, "The request body is empty; send a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return pv.Errorf(pv.EInvalidRequest, "The request body must hold exactly one JSON object.")
	}
	return nil
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return pv.Errorf(pv.EInvalidRequest, "The request body is not valid JSON (error at byte %d).", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return pv.Errorf(pv.EInvalidRequest, "The request body must be a JSON object.")
		}
		return pv.ParamErrorf(pv.EInvalidRequest, typ.Field, "The field %q must be a %s.", typ.Field, jsonKind(typ.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return pv.Errorf(pv.EInvalidRequest, "The request body ends before the JSON object does.")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return pv.ParamErrorf(pv.EInvalidRequest, field, "Unknown field %q.", field)
	default:
		return &pv.Error{Code: pv.EInvalidRequest, Message: "The request body is not a valid JSON object.", Err: fmt.Errorf("decode: %w", err)}
	}
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "list"
	case "struct", "map":
		return "JSON object"
	default:
		return "number"
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"An internal error occurred."}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
