package otp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrUnsealable is returned by [Sealer.OpenMessage] when sealed text cannot
// be opened: it was sealed under another server secret, for another
// message, or it was altered.
var ErrUnsealable = errors.New("otp: sealed message cannot be opened")

// Sealer encrypts what the outbox keeps to send (a message's body and its
// code) with AES-256-GCM, under a key derived from the server secret. The
// message id is the associated data, so sealed text copied onto another
// message does not open.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the outbox key from the server secret.
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("otp: server secret must be at least 32 bytes")
	}
	block, err := aes.NewCipher(DeriveKey(secret, "phoneverify outbox seal v1"))
	if err != nil {
		return nil, fmt.Errorf("otp: sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("otp: sealer: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// SealMessage encrypts body and code for the message id: a random 12-byte
// nonce, then the ciphertext of len(code) ‖ code ‖ body and its tag.
func (s *Sealer) SealMessage(id, body, code string) ([]byte, error) {
	plain := binary.AppendUvarint(make([]byte, 0, 2+len(code)+len(body)), uint64(len(code)))
	plain = append(plain, code...)
	plain = append(plain, body...)
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("otp: seal: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(id)), nil
}

// OpenMessage returns the body and code that [Sealer.SealMessage] sealed for
// id. It returns ErrUnsealable when they cannot be recovered.
func (s *Sealer) OpenMessage(id string, sealed []byte) (body, code string, err error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return "", "", ErrUnsealable
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
	if err != nil {
		return "", "", ErrUnsealable
	}
	l, k := binary.Uvarint(plain)
	if k <= 0 || l > uint64(len(plain)-k) {
		return "", "", ErrUnsealable
	}
	rest := plain[k:]
	return string(rest[l:]), string(rest[:l]), nil
}
