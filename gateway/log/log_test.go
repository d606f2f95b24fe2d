package log

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	pv "github.com/phoneverify/phoneverify"
)

func TestSendWritesOneLine(t *testing.T) {
	var buf bytes.Buffer
	s := New(&buf)
	res, err := s.Send(context.Background(), &pv.Message{To: "+9779812345678", VerificationID: "VE1", Body: "Your code is 123456\n\n@example.com #123456"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Gateway != "log" {
		t.Errorf("gateway = %q, want log", res.Gateway)
	}
	out := buf.String()
	if strings.Count(out, "\n") != 1 {
		t.Errorf("want exactly one line, got %q", out)
	}
	for _, want := range []string{"to=+9779812345678", "verification=VE1", `123456\n\n@example.com #123456`} {
		if !strings.Contains(out, want) {
			t.Errorf("line %q lacks %q", out, want)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSendWriteError(t *testing.T) {
	_, err := New(failingWriter{}).Send(context.Background(), &pv.Message{To: "+1", Body: "x"})
	var d *pv.DeliveryError
	if !errors.As(err, &d) || d.Permanent {
		t.Fatalf("got %v, want a temporary DeliveryError", err)
	}
}
