package twilioapi

import (
	"testing"

	pv "github.com/phoneverify/phoneverify"
)

// FuzzDecodeForm: any body either decodes, or yields invalid_request; and
// the typed readers never panic on what decodes.
func FuzzDecodeForm(f *testing.F) {
	for _, s := range []string{
		"To=%2B15017122661&Channel=sms", "Code=123456&VerificationSid=VE0", "RateLimits=%7B%22ip%22%3A%221.2.3.4%22%7D",
		"%", "a=%zz", "a=%00", "a=\xff", "PageSize=-1&Page=x", "Push.IncludeDate=true", "=&&=", "RateLimits=[1]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := decodeForm(body)
		if err != nil {
			if code := pv.ErrorCode(err); code != pv.EInvalidRequest {
				t.Fatalf("body %q: code %q, want %q", body, code, pv.EInvalidRequest)
			}
			return
		}
		fm := &form{v: v}
		for name := range v {
			fm.str(name)
			fm.boolean(name)
			fm.integer(name)
			fm.time(name)
			fm.object(name)
			fm.json(name)
		}
		if fm.err != nil && pv.ErrorCode(fm.err) != pv.EInvalidRequest {
			t.Fatalf("body %q: reader error code %q", body, pv.ErrorCode(fm.err))
		}
	})
}

func TestFormReaders(t *testing.T) {
	v, err := decodeForm([]byte("B=true&b=nope&N=42&n=4x&T=2024-05-01T12%3A00%3A00Z&O=%7B%22ip%22%3A%221.2.3.4%22%2C%22n%22%3A7%7D&J=%7B"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		read      func(*form) any
		want      any
		wantParam string
	}{
		{"bool", func(f *form) any { return *f.boolean("B") }, true, ""},
		{"bad bool", func(f *form) any { return f.boolean("b") == nil }, true, "b"},
		{"absent bool", func(f *form) any { return f.boolean("X") == nil }, true, ""},
		{"int", func(f *form) any { return *f.integer("N") }, 42, ""},
		{"bad int", func(f *form) any { return f.integer("n") == nil }, true, "n"},
		{"time", func(f *form) any { return f.time("T").Hour() }, 12, ""},
		{"object", func(f *form) any { o := f.object("O"); return o["ip"] + "," + o["n"] }, "1.2.3.4,7", ""},
		{"bad json", func(f *form) any { f.json("J"); return nil }, nil, "J"},
		{"not an object", func(f *form) any { return f.object("N") == nil }, true, "N"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &form{v: v}
			if got := tt.read(f); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			got := ""
			if e := pv.AsError(f.err); e != nil {
				got = e.Param
			}
			if got != tt.wantParam {
				t.Errorf("got error param %q, want %q (%v)", got, tt.wantParam, f.err)
			}
		})
	}
}

func TestDecodeFormRefuses(t *testing.T) {
	for _, body := range []string{"a=%zz", "a=%00", "a=\xff", "%ff=1"} {
		if _, err := decodeForm([]byte(body)); pv.ErrorCode(err) != pv.EInvalidRequest {
			t.Errorf("body %q: got %v, want invalid_request", body, err)
		}
	}
}
