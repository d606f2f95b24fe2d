package message

import (
	"strings"
	"testing"
	"time"
)

func TestRenderPSD2AndWarning(t *testing.T) {
	base := Params{Template: "Your {app} code is {code}", App: "Bank", Code: "123456", TTL: time.Minute,
		AppHash: "FA+9qCX9VSu", WebOTPDomain: "example.com"}
	tests := []struct {
		name string
		edit func(*Params)
		want string
	}{
		{"plain", func(*Params) {}, "Your Bank code is 123456\nFA+9qCX9VSu\n@example.com #123456"},
		{"PSD2", func(p *Params) { p.Amount, p.Payee = "€39.99", "Acme\nInc." },
			"Your Bank code is 123456 You are about to send €39.99 to Acme Inc.\nFA+9qCX9VSu\n@example.com #123456"},
		{"amount alone adds nothing", func(p *Params) { p.Amount = "€1" }, "Your Bank code is 123456\nFA+9qCX9VSu\n@example.com #123456"},
		{"warning", func(p *Params) { p.DoNotShareWarning = true },
			"Your Bank code is 123456 " + DoNotShareWarning + "\nFA+9qCX9VSu\n@example.com #123456"},
		{"both", func(p *Params) { p.Amount, p.Payee, p.DoNotShareWarning = "5", "Bob", true },
			"Your Bank code is 123456 You are about to send 5 to Bob. " + DoNotShareWarning + "\nFA+9qCX9VSu\n@example.com #123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.edit(&p)
			got, err := Render(p)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			// The autofill lines stay last whatever is added.
			if !strings.HasSuffix(got, "\n@example.com #123456") {
				t.Errorf("WebOTP line is not last: %q", got)
			}
		})
	}
}
