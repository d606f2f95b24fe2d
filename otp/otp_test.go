package otp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"math"
	"testing"
)

func TestGenerateLengthAndDigits(t *testing.T) {
	for length := 1; length <= MaxLength; length++ {
		code, err := Generate(rand.Reader, length)
		if err != nil {
			t.Fatalf("Generate(%d): %v", length, err)
		}
		if !ValidFormat(code, length) {
			t.Errorf("Generate(%d) = %q, want %d digits", length, code, length)
		}
	}
	for _, bad := range []int{0, -1, MaxLength + 1} {
		if _, err := Generate(rand.Reader, bad); err == nil {
			t.Errorf("Generate(%d): want error", bad)
		}
	}
}

// sequence yields the given 64-bit values in order.
type sequence struct{ vals []uint64 }

func (s *sequence) Read(p []byte) (int, error) {
	binary.BigEndian.PutUint64(p, s.vals[0])
	s.vals = s.vals[1:]
	return 8, nil
}

func TestGenerateRejectsBiasedBlock(t *testing.T) {
	// The top value lies in the incomplete last block for n=10^6 and must be
	// rejected; the next draw (42) is used instead.
	r := &sequence{vals: []uint64{math.MaxUint64, 42}}
	code, err := Generate(r, 6)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := code, "000042"; got != want {
		t.Errorf("got %q, want %q (leading zeros kept, biased draw rejected)", got, want)
	}
}

func TestGenerateUniform(t *testing.T) {
	// Chi-squared over the first digit of 4-digit codes: 10 buckets, 20000 draws.
	const draws = 20000
	var counts [10]int
	for range draws {
		code, err := Generate(rand.Reader, 4)
		if err != nil {
			t.Fatal(err)
		}
		counts[code[0]-'0']++
	}
	expected := float64(draws) / 10
	chi := 0.0
	for _, c := range counts {
		d := float64(c) - expected
		chi += d * d / expected
	}
	// 9 degrees of freedom: p=0.0001 critical value is about 33.7.
	if chi > 33.7 {
		t.Errorf("first-digit distribution looks biased: chi2=%.1f counts=%v", chi, counts)
	}
}

func TestGenerateDifferent(t *testing.T) {
	r := &sequence{vals: []uint64{123456, 123456, 654321}}
	code, err := GenerateDifferent(r, 6, func(c string) bool { return c == "123456" })
	if err != nil {
		t.Fatal(err)
	}
	if code != "654321" {
		t.Errorf("got %q, want 654321", code)
	}
}

func TestValidFormat(t *testing.T) {
	tests := []struct {
		name string
		code string
		len  int
		want bool
	}{
		{"ok", "012345", 6, true},
		{"short", "12345", 6, false},
		{"long", "1234567", 6, false},
		{"letter", "12345a", 6, false},
		{"space", "123 45", 6, false},
		{"unicode digit", "12345٣", 6, false},
		{"empty", "", 6, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidFormat(tt.code, tt.len); got != tt.want {
				t.Errorf("ValidFormat(%q, %d) = %v, want %v", tt.code, tt.len, got, tt.want)
			}
		})
	}
}

func TestHasher(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	h, err := NewHasher(secret)
	if err != nil {
		t.Fatal(err)
	}
	hash := h.Hash("VE1", "123456")
	if !h.Equal("VE1", "123456", hash) {
		t.Error("right code does not match")
	}
	if h.Equal("VE1", "123457", hash) {
		t.Error("wrong code matches")
	}
	if h.Equal("VE2", "123456", hash) {
		t.Error("hash matches under another verification id")
	}
	if bytes.Contains(hash, []byte("123456")) {
		t.Error("hash contains the code")
	}
	other, _ := NewHasher(bytes.Repeat([]byte{8}, 32))
	if other.Equal("VE1", "123456", hash) {
		t.Error("hash matches under another secret")
	}
	if _, err := NewHasher([]byte("short")); err == nil {
		t.Error("short secret accepted")
	}
}

func FuzzEqual(f *testing.F) {
	h, _ := NewHasher(bytes.Repeat([]byte{1}, 32))
	stored := h.Hash("VEfuzz", "424242")
	f.Add("VEfuzz", "424242")
	f.Add("VEfuzz", "")
	f.Add("", "424242\x00")
	f.Fuzz(func(t *testing.T, id, code string) {
		got := h.Equal(id, code, stored)
		want := id == "VEfuzz" && code == "424242"
		if got != want {
			t.Fatalf("Equal(%q, %q) = %v, want %v", id, code, got, want)
		}
	})
}
