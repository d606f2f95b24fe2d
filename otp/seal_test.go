package otp_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phoneverify/phoneverify/otp"
)

func TestSealerRoundTrip(t *testing.T) {
	s, err := otp.NewSealer(bytes.Repeat([]byte("s"), 32))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body, code string
	}{
		{"plain", "Your code is 482913", "482913"},
		{"empty code", "hello", ""},
		{"unicode", "तपाईंको कोड 0042 हो", "0042"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := s.SealMessage("MS1", tt.body, tt.code)
			if err != nil {
				t.Fatal(err)
			}
			if tt.code != "" && bytes.Contains(sealed, []byte(tt.code)) {
				t.Errorf("sealed text contains the code in clear")
			}
			body, code, err := s.OpenMessage("MS1", sealed)
			if err != nil {
				t.Fatal(err)
			}
			if body != tt.body || code != tt.code {
				t.Errorf("OpenMessage = %q, %q; want %q, %q", body, code, tt.body, tt.code)
			}
		})
	}
}

func TestSealerRejects(t *testing.T) {
	s, _ := otp.NewSealer(bytes.Repeat([]byte("s"), 32))
	other, _ := otp.NewSealer(bytes.Repeat([]byte("t"), 32))
	sealed, err := s.SealMessage("MS1", "Your code is 1234", "1234")
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name   string
		sealer *otp.Sealer
		id     string
		sealed []byte
	}{
		{"other message", s, "MS2", sealed},
		{"other secret", other, "MS1", sealed},
		{"altered", s, "MS1", flipped},
		{"truncated", s, "MS1", sealed[:10]},
		{"nil", s, "MS1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.sealer.OpenMessage(tt.id, tt.sealed)
			if got, want := err, otp.ErrUnsealable; !errors.Is(got, want) {
				t.Errorf("OpenMessage error = %v, want %v", got, want)
			}
		})
	}
}
