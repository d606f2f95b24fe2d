// Package otp makes one-time codes and keeps them safe at rest: codes are
// uniform over their digit space (crypto/rand, no modulo bias), stored only as
// keyed hashes bound to their verification, and compared in constant time.
package otp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxLength is the longest code Generate makes; 10 digits fit in a uint64
// with room for rejection sampling.
const MaxLength = 10

var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

// Generate returns a code of length digits drawn uniformly from r (use
// crypto/rand.Reader outside tests). Leading zeros are kept, so every one of
// the 10^length codes is equally likely.
func Generate(r io.Reader, length int) (string, error) {
	if length < 1 || length > MaxLength {
		return "", fmt.Errorf("otp: length %d out of range 1..%d", length, MaxLength)
	}
	n := pow10[length]
	// Reject draws from the incomplete last block of n so that taking the
	// remainder is exactly uniform.
	limit := ^uint64(0) - (^uint64(0) % n)
	var buf [8]byte
	for {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("otp: read random: %w", err)
		}
		v := binary.BigEndian.Uint64(buf[:])
		if v < limit {
			return format(v%n, length), nil
		}
	}
}

func format(v uint64, length int) string {
	b := make([]byte, length)
	for i := length - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b)
}

// GenerateDifferent returns a code that differs from the previous code, told
// by isPrevious, so a resend never repeats the code the person already has.
func GenerateDifferent(r io.Reader, length int, isPrevious func(code string) bool) (string, error) {
	for range 100 {
		code, err := Generate(r, length)
		if err != nil {
			return "", err
		}
		if isPrevious == nil || !isPrevious(code) {
			return code, nil
		}
	}
	return "", errors.New("otp: random source keeps repeating the previous code")
}

// ValidFormat reports whether code has exactly length ASCII digits.
func ValidFormat(code string, length int) bool {
	if len(code) != length {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// Hasher computes keyed hashes of codes. The key is derived from the server
// secret, so a copy of the database alone does not let anyone test guesses.
type Hasher struct {
	key []byte
}

// NewHasher derives the code-hashing key from the server secret.
func NewHasher(secret []byte) (*Hasher, error) {
	if len(secret) < 32 {
		return nil, errors.New("otp: server secret must be at least 32 bytes")
	}
	return &Hasher{key: DeriveKey(secret, "phoneverify code hash v1")}, nil
}

// DeriveKey derives an independent 32-byte key for one purpose from the
// server secret, so the secret itself never keys two different things.
func DeriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Hash returns HMAC-SHA256(key, verificationID ‖ 0 ‖ code). Binding the hash
// to the verification id means a hash copied onto another verification does
// not match its code.
func (h *Hasher) Hash(verificationID, code string) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(verificationID))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// Equal reports, in constant time, whether code is the one whose hash is
// stored for verificationID.
func (h *Hasher) Equal(verificationID, code string, hash []byte) bool {
	return hmac.Equal(h.Hash(verificationID, code), hash)
}
