// Package token issues and checks the signed proofs of verification: JWTs
// signed with Ed25519 (EdDSA) that any JWT library can verify with the public
// keys published as a JWKS. Private keys are kept in the store, sealed with
// AES-GCM under a key derived from the server secret, so that every node
// sharing the database and the secret signs and verifies alike.
package token

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/otp"
)

// KeyStore is the part of phoneverify.Store the keyring needs.
type KeyStore interface {
	SigningKeys(ctx context.Context) ([]*phoneverify.SigningKey, error)
	EnsureSigningKey(ctx context.Context, k *phoneverify.SigningKey) ([]*phoneverify.SigningKey, error)
	AddSigningKey(ctx context.Context, k *phoneverify.SigningKey) error
}

// Claims is the content of a proof of verification.
type Claims struct {
	Issuer         string
	Subject        string
	PhoneNumber    string
	VerificationID string
	ServiceID      string
	Amount         string
	Payee          string
	IssuedAt       time.Time
	ExpiresAt      time.Time
	KeyID          string
}

type wireClaims struct {
	jwt.Claims
	PhoneNumber    string `json:"phone_number"`
	VerificationID string `json:"vid"`
	ServiceID      string `json:"svc,omitempty"`
	Amount         string `json:"amount,omitempty"`
	Payee          string `json:"payee,omitempty"`
}

// ErrInvalid is wrapped by every error Verify returns for a token that is
// malformed, forged, expired or issued by someone else.
var ErrInvalid = errors.New("invalid token")

// DefaultRetention is how long a retired key stays published and trusted: as
// long as the longest token lifetime a service may set.
const DefaultRetention = 30 * 24 * time.Hour

type key struct {
	id        string
	priv      ed25519.PrivateKey
	pub       ed25519.PublicKey
	createdAt time.Time
	retiredAt *time.Time
}

// Keyring signs with the newest key and verifies with every key not yet past
// its retention.
type Keyring struct {
	store     KeyStore
	aead      cipher.AEAD
	issuer    string
	retention time.Duration
	random    io.Reader

	mu     sync.RWMutex
	keys   map[string]*key
	signer jose.Signer
	active *key
}

// Options tunes a Keyring; zero values take defaults.
type Options struct {
	// Issuer is the iss claim; default "phoneverify".
	Issuer string
	// Retention is how long retired keys still verify; default DefaultRetention.
	Retention time.Duration
	// Random is the source of key material and nonces; default crypto/rand.
	Random io.Reader
}

// NewKeyring loads the signing keys from the store, creating the first one if
// there is none (atomically, so nodes starting together agree on it).
func NewKeyring(ctx context.Context, store KeyStore, secret []byte, now time.Time, opts Options) (*Keyring, error) {
	if len(secret) < 32 {
		return nil, errors.New("token: server secret must be at least 32 bytes")
	}
	block, err := aes.NewCipher(otp.DeriveKey(secret, "phoneverify signing key seal v1"))
	if err != nil {
		return nil, fmt.Errorf("token: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("token: gcm: %w", err)
	}
	k := &Keyring{store: store, aead: aead, issuer: opts.Issuer, retention: opts.Retention, random: opts.Random}
	if k.issuer == "" {
		k.issuer = "phoneverify"
	}
	if k.retention == 0 {
		k.retention = DefaultRetention
	}
	if k.random == nil {
		k.random = rand.Reader
	}
	first, err := k.newKey(now)
	if err != nil {
		return nil, err
	}
	stored, err := store.EnsureSigningKey(ctx, first)
	if err != nil {
		return nil, fmt.Errorf("token: ensure signing key: %w", err)
	}
	if err := k.load(stored); err != nil {
		return nil, err
	}
	return k, nil
}

// Issuer returns the iss claim the keyring signs and expects.
func (k *Keyring) Issuer() string { return k.issuer }

func (k *Keyring) newKey(now time.Time) (*phoneverify.SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(k.random)
	if err != nil {
		return nil, fmt.Errorf("token: generate key: %w", err)
	}
	var idb [8]byte
	if _, err := io.ReadFull(k.random, idb[:]); err != nil {
		return nil, fmt.Errorf("token: key id: %w", err)
	}
	id := hex.EncodeToString(idb[:])
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := io.ReadFull(k.random, nonce); err != nil {
		return nil, fmt.Errorf("token: nonce: %w", err)
	}
	sealed := k.aead.Seal(nonce, nonce, priv.Seed(), []byte(id))
	return &phoneverify.SigningKey{ID: id, Sealed: sealed, CreatedAt: now.UTC()}, nil
}

func (k *Keyring) open(sk *phoneverify.SigningKey) (*key, error) {
	ns := k.aead.NonceSize()
	if len(sk.Sealed) < ns {
		return nil, fmt.Errorf("token: signing key %s: sealed data too short", sk.ID)
	}
	seed, err := k.aead.Open(nil, sk.Sealed[:ns], sk.Sealed[ns:], []byte(sk.ID))
	if err != nil {
		return nil, fmt.Errorf("token: signing key %s cannot be opened with this server secret (every node must share PHONEVERIFY_SECRET): %w", sk.ID, err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("token: signing key %s: bad seed size", sk.ID)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return &key{id: sk.ID, priv: priv, pub: priv.Public().(ed25519.PublicKey), createdAt: sk.CreatedAt, retiredAt: sk.RetiredAt}, nil
}

// load replaces the in-memory key set with stored.
func (k *Keyring) load(stored []*phoneverify.SigningKey) error {
	keys := make(map[string]*key, len(stored))
	var active *key
	for _, sk := range stored {
		kk, err := k.open(sk)
		if err != nil {
			return err
		}
		keys[kk.id] = kk
		if kk.retiredAt == nil && (active == nil || kk.createdAt.After(active.createdAt)) {
			active = kk
		}
	}
	if active == nil {
		return errors.New("token: no active signing key in the store")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: active.priv, KeyID: active.id}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return fmt.Errorf("token: signer: %w", err)
	}
	k.mu.Lock()
	k.keys, k.active, k.signer = keys, active, signer
	k.mu.Unlock()
	return nil
}

// Reload reads the keys again from the store, to pick up a rotation done by
// another node or by `phoneverify keys rotate`.
func (k *Keyring) Reload(ctx context.Context) error {
	stored, err := k.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("token: load signing keys: %w", err)
	}
	return k.load(stored)
}

// Rotate adds a new signing key; earlier keys are retired but keep verifying
// the tokens they signed until the retention passes.
func (k *Keyring) Rotate(ctx context.Context, now time.Time) error {
	nk, err := k.newKey(now)
	if err != nil {
		return err
	}
	if err := k.store.AddSigningKey(ctx, nk); err != nil {
		return fmt.Errorf("token: add signing key: %w", err)
	}
	return k.Reload(ctx)
}

// Issue signs c with the active key; Issuer and KeyID are filled in.
func (k *Keyring) Issue(c Claims) (string, error) {
	k.mu.RLock()
	signer := k.signer
	k.mu.RUnlock()
	w := wireClaims{
		Claims: jwt.Claims{
			Issuer:   k.issuer,
			Subject:  c.Subject,
			IssuedAt: jwt.NewNumericDate(c.IssuedAt),
			Expiry:   jwt.NewNumericDate(c.ExpiresAt),
		},
		PhoneNumber:    c.PhoneNumber,
		VerificationID: c.VerificationID,
		ServiceID:      c.ServiceID,
		Amount:         c.Amount,
		Payee:          c.Payee,
	}
	s, err := jwt.Signed(signer).Claims(w).Serialize()
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return s, nil
}

// Verify checks the signature, issuer and expiry of a token and returns its
// claims. Every rejection wraps ErrInvalid. A token signed by a key this node
// has not seen yet (rotated elsewhere) triggers one reload from the store.
func (k *Keyring) Verify(ctx context.Context, raw string, now time.Time) (*Claims, error) {
	if len(raw) > 4096 || strings.Count(raw, ".") != 2 {
		return nil, fmt.Errorf("%w: not a compact JWT", ErrInvalid)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: want one signature", ErrInvalid)
	}
	kid := tok.Headers[0].KeyID
	kk, err := k.lookup(ctx, kid, now)
	if err != nil {
		return nil, err
	}
	var w wireClaims
	if err := tok.Claims(kk.pub, &w); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrInvalid, err)
	}
	if w.Expiry == nil || w.IssuedAt == nil {
		return nil, fmt.Errorf("%w: missing exp or iat", ErrInvalid)
	}
	if err := w.Claims.ValidateWithLeeway(jwt.Expected{Issuer: k.issuer, Time: now}, 0); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// RFC 7519: exp is the time "on or after which" the token is refused.
	if !now.Before(w.Expiry.Time()) {
		return nil, fmt.Errorf("%w: expired", ErrInvalid)
	}
	return &Claims{
		Issuer:         w.Issuer,
		Subject:        w.Subject,
		PhoneNumber:    w.PhoneNumber,
		VerificationID: w.VerificationID,
		ServiceID:      w.ServiceID,
		Amount:         w.Amount,
		Payee:          w.Payee,
		IssuedAt:       w.IssuedAt.Time().UTC(),
		ExpiresAt:      w.Expiry.Time().UTC(),
		KeyID:          kid,
	}, nil
}

func (k *Keyring) lookup(ctx context.Context, kid string, now time.Time) (*key, error) {
	if kid == "" || len(kid) > 64 {
		return nil, fmt.Errorf("%w: missing key id", ErrInvalid)
	}
	k.mu.RLock()
	kk := k.keys[kid]
	k.mu.RUnlock()
	if kk == nil {
		if err := k.Reload(ctx); err != nil {
			return nil, err
		}
		k.mu.RLock()
		kk = k.keys[kid]
		k.mu.RUnlock()
	}
	if kk == nil {
		return nil, fmt.Errorf("%w: unknown key id", ErrInvalid)
	}
	if kk.retiredAt != nil && now.Sub(*kk.retiredAt) > k.retention {
		return nil, fmt.Errorf("%w: key retired", ErrInvalid)
	}
	return kk, nil
}

// JWKS returns the public keys as a JSON Web Key Set: the active key and
// every retired key still within its retention, newest first.
func (k *Keyring) JWKS(now time.Time) ([]byte, error) {
	k.mu.RLock()
	list := make([]*key, 0, len(k.keys))
	for _, kk := range k.keys {
		if kk.retiredAt == nil || now.Sub(*kk.retiredAt) <= k.retention {
			list = append(list, kk)
		}
	}
	k.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return list[i].createdAt.After(list[j].createdAt) })
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(list))}
	for _, kk := range list {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: kk.pub, KeyID: kk.id, Algorithm: string(jose.EdDSA), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("token: marshal jwks: %w", err)
	}
	return b, nil
}

// ActiveKeyID returns the id of the key that signs new tokens.
func (k *Keyring) ActiveKeyID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.active.id
}
