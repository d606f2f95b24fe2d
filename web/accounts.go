package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// account is a user of the demo apps, kept in the demo's own table
// (demo_accounts): an app's users are the app's business, not phoneverify's.
type account struct {
	// ID is also the subject the sign-up verified the phone for, so
	// phoneverify's registry knows which account holds which phone.
	ID       string
	Username string
	// Phone is the verified number, in E.164 as the API returned it.
	Phone        string
	PasswordHash []byte
	CreatedAt    time.Time
}

// errUsernameTaken is returned by accountStore.create for a name in use.
var errUsernameTaken = errors.New("username taken")

// accountStore keeps the demo's accounts; its SQL runs on SQLite and
// PostgreSQL alike.
type accountStore struct {
	db *sql.DB
}

func (s *accountStore) create(ctx context.Context, a *account) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO demo_accounts (id, username, password_hash, phone, created_at)
	VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING`, a.ID, a.Username, a.PasswordHash, a.Phone, a.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("create demo account: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("create demo account: %w", err)
	} else if n == 0 {
		return errUsernameTaken
	}
	return nil
}

// byUsername returns the account, or nil if there is none.
func (s *accountStore) byUsername(ctx context.Context, username string) (*account, error) {
	var (
		a  account
		at int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, username, password_hash, phone, created_at FROM demo_accounts
	WHERE username = $1`, username).Scan(&a.ID, &a.Username, &a.PasswordHash, &a.Phone, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read demo account: %w", err)
	}
	a.CreatedAt = time.UnixMilli(at).UTC()
	return &a, nil
}

// pbkdf2Iterations is the cost of a demo password hash. The demo keeps it
// modest because its accounts are throwaway and its tests run under the race
// detector; an app of your own should follow OWASP's current advice
// (600,000 for PBKDF2-HMAC-SHA256) or use a memory-hard function such as
// Argon2id.
const pbkdf2Iterations = 100_000

// hashPassword returns "pbkdf2-sha256$iterations$salt$key".
func hashPassword(password string) ([]byte, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, pbkdf2Iterations, 32)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	enc := base64.RawStdEncoding
	return fmt.Appendf(nil, "pbkdf2-sha256$%d$%s$%s", pbkdf2Iterations, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// dummyHash is checked against when the username is unknown, so that a
// wrong name takes as long as a wrong password.
func dummyHash() []byte {
	return []byte("pbkdf2-sha256$" + strconv.Itoa(pbkdf2Iterations) + "$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
}

// checkPassword reports whether password matches a hash from hashPassword,
// comparing in constant time.
func checkPassword(hash []byte, password string) bool {
	parts := strings.Split(string(hash), "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > 10_000_000 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[2])
	want, err2 := enc.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	return err == nil && hmac.Equal(got, want) && !bytes.Equal(want, make([]byte, len(want)))
}
