package token

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/phoneverify/phoneverify"
)

// memKeys is an in-memory KeyStore; the SQL stores' own conformance suite
// covers persistence.
type memKeys struct {
	mu   sync.Mutex
	keys []*phoneverify.SigningKey
}

func (m *memKeys) SigningKeys(context.Context) ([]*phoneverify.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*phoneverify.SigningKey(nil), m.keys...), nil
}

func (m *memKeys) EnsureSigningKey(_ context.Context, k *phoneverify.SigningKey) ([]*phoneverify.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.keys) == 0 {
		m.keys = append(m.keys, k)
	}
	return append([]*phoneverify.SigningKey(nil), m.keys...), nil
}

func (m *memKeys) AddSigningKey(_ context.Context, k *phoneverify.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, old := range m.keys {
		if old.RetiredAt == nil {
			at := k.CreatedAt
			old.RetiredAt = &at
		}
	}
	m.keys = append(m.keys, k)
	return nil
}

var (
	secret = bytes.Repeat([]byte("s"), 32)
	t0     = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
)

func mustKeyring(t *testing.T, store KeyStore, sec []byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(context.Background(), store, sec, t0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func claims() Claims {
	return Claims{Subject: "user-1", PhoneNumber: "+9779812345678", VerificationID: "VE1", ServiceID: "VA1",
		Amount: "10.00", Payee: "shop", IssuedAt: t0, ExpiresAt: t0.Add(15 * time.Minute)}
}

func TestIssueVerify(t *testing.T) {
	k := mustKeyring(t, &memKeys{}, secret)
	raw, err := k.Issue(claims())
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Verify(context.Background(), raw, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := claims()
	want.Issuer, want.KeyID = "phoneverify", k.ActiveKeyID()
	if *got != want {
		t.Errorf("got %+v, want %+v", *got, want)
	}
}

func TestVerifyRejects(t *testing.T) {
	store := &memKeys{}
	k := mustKeyring(t, store, secret)
	raw, _ := k.Issue(claims())
	other := mustKeyring(t, &memKeys{}, bytes.Repeat([]byte("o"), 32))
	forged, _ := other.Issue(claims())
	parts := strings.Split(raw, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2]
	tests := []struct {
		name string
		raw  string
		now  time.Time
	}{
		{"expired", raw, t0.Add(16 * time.Minute)},
		{"at expiry", raw, t0.Add(15 * time.Minute)},
		{"other key", forged, t0},
		{"tampered", tampered, t0},
		{"garbage", "abc", t0},
		{"empty", "", t0},
		{"too many parts", raw + ".x", t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := k.Verify(context.Background(), tt.raw, tt.now); !errors.Is(err, ErrInvalid) {
				t.Errorf("Verify: got %v, want ErrInvalid", err)
			}
		})
	}
}

// A token must verify with any standard JWT library given only the JWKS.
func TestVerifiableWithJWKS(t *testing.T) {
	k := mustKeyring(t, &memKeys{}, secret)
	raw, _ := k.Issue(claims())
	b, err := k.JWKS(t0)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("JWKS has %d keys for kid %q, want 1", len(keys), tok.Headers[0].KeyID)
	}
	var m map[string]any
	if err := tok.Claims(keys[0].Key, &m); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"iss", "sub", "phone_number", "vid", "iat", "exp", "amount", "payee"} {
		if _, ok := m[c]; !ok {
			t.Errorf("claim %q missing from %v", c, m)
		}
	}
	if strings.Contains(string(b), `"d"`) {
		t.Error("JWKS leaks a private part")
	}
}

func TestRotateKeepsOldTokensValid(t *testing.T) {
	store := &memKeys{}
	nodeA := mustKeyring(t, store, secret)
	nodeB := mustKeyring(t, store, secret)
	if nodeA.ActiveKeyID() != nodeB.ActiveKeyID() {
		t.Fatal("two nodes on one store disagree on the first key")
	}
	old, _ := nodeA.Issue(claims())
	if err := nodeA.Rotate(context.Background(), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	fresh, _ := nodeA.Issue(claims())
	// Node B learns the new key on first sight of its kid.
	for _, raw := range []string{old, fresh} {
		if _, err := nodeB.Verify(context.Background(), raw, t0.Add(2*time.Minute)); err != nil {
			t.Errorf("node B: %v", err)
		}
	}
	b, _ := nodeA.JWKS(t0.Add(2 * time.Minute))
	var set jose.JSONWebKeySet
	_ = json.Unmarshal(b, &set)
	if len(set.Keys) != 2 {
		t.Errorf("JWKS has %d keys after rotation, want 2", len(set.Keys))
	}
	b, _ = nodeA.JWKS(t0.Add(DefaultRetention + 2*time.Minute))
	_ = json.Unmarshal(b, &set)
	if len(set.Keys) != 1 {
		t.Errorf("JWKS has %d keys after retention, want 1", len(set.Keys))
	}
}

func TestWrongSecretCannotOpenKeys(t *testing.T) {
	store := &memKeys{}
	mustKeyring(t, store, secret)
	if _, err := NewKeyring(context.Background(), store, bytes.Repeat([]byte("x"), 32), t0, Options{}); err == nil {
		t.Fatal("keyring opened keys sealed under another secret")
	}
}

func FuzzVerify(f *testing.F) {
	k, err := NewKeyring(context.Background(), &memKeys{}, secret, t0, Options{})
	if err != nil {
		f.Fatal(err)
	}
	raw, _ := k.Issue(claims())
	f.Add(raw)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := k.Verify(context.Background(), s, t0)
		if err == nil && c.PhoneNumber != "+9779812345678" {
			t.Fatalf("accepted a token that was not issued: %q", s)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
