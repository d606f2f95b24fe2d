package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/phoneverify/phoneverify"
)

// CreateAPIKey inserts k; k.ID and k.Hash must be set. It returns ENotFound
// if k.ServiceID names no service and EConflict if a key with the same id or
// hash exists.
func (s *Store) CreateAPIKey(ctx context.Context, k *phoneverify.APIKey) error {
	const op = "create API key"
	if k.ID == "" || len(k.Hash) == 0 {
		return mapErr(op, errors.New("API key has no id or hash"))
	}
	scopes := k.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	scopesJSON, err := json.Marshal(scopes)
	if err != nil {
		return mapErr(op, err)
	}
	return s.withTx(ctx, op, func(r runner) error {
		_, err := r.exec(qInsertAPIKey, k.ID, k.ServiceID, k.Name, k.Prefix, k.Hash, string(scopesJSON),
			unixMilli(k.CreatedAt), nullUnixMilli(k.LastUsedAt), nullUnixMilli(k.RevokedAt), encodePrefixes(k.AllowedIPs))
		switch {
		case isForeignKeyViolation(err):
			return notFound("service")
		case isUniqueViolation(err):
			return conflict(err, "The API key conflicts with an existing one.")
		}
		return mapErr(op, err)
	})
}

// APIKeyByHash returns the key with the given hash, revoked or not. It
// returns ENotFound if there is none.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (*phoneverify.APIKey, error) {
	const op = "read API key"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	k, err := scanAPIKey(r.queryRow(qSelectAPIKeyByHash, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("API key")
	}
	if err != nil {
		return nil, mapErr(op, err)
	}
	return k, nil
}

// APIKeys returns every key, oldest first.
func (s *Store) APIKeys(ctx context.Context) ([]*phoneverify.APIKey, error) {
	const op = "list API keys"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	rows, err := r.query(qSelectAPIKeys)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	var out []*phoneverify.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, mapErr(op, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(op, err)
	}
	return out, nil
}

// RevokeAPIKey marks the key revoked at the given time; a key revoked before
// keeps its first revocation time. It returns ENotFound if there is no key
// with that id.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	const op = "revoke API key"
	r, err := s.writer(ctx)
	if err != nil {
		return mapErr(op, err)
	}
	res, err := r.exec(qRevokeAPIKey, id, unixMilli(at))
	if err != nil {
		return mapErr(op, err)
	}
	return mustAffectOne(op, res, "API key")
}

// TouchAPIKey records that the key was used at at, unless its last use is
// after staleBefore already. An unknown key is no error: the key a request
// presented may have been deleted with its service meanwhile.
func (s *Store) TouchAPIKey(ctx context.Context, id string, at, staleBefore time.Time) error {
	const op = "touch API key"
	r, err := s.writer(ctx)
	if err != nil {
		return mapErr(op, err)
	}
	_, err = r.exec(qTouchAPIKey, id, unixMilli(at), unixMilli(staleBefore))
	return mapErr(op, err)
}

func encodePrefixes(ps []netip.Prefix) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}

func scanAPIKey(sc scanner) (*phoneverify.APIKey, error) {
	var (
		k                   phoneverify.APIKey
		scopes              string
		createdAt           int64
		lastUsed, revokedAt sql.NullInt64
		allowed             string
	)
	if err := sc.Scan(&k.ID, &k.ServiceID, &k.Name, &k.Prefix, &k.Hash, &scopes, &createdAt, &lastUsed, &revokedAt, &allowed); err != nil {
		return nil, err
	}
	for _, p := range strings.Split(allowed, ",") {
		if p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("API key allowed IPs: %w", err)
		}
		k.AllowedIPs = append(k.AllowedIPs, prefix)
	}
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return nil, fmt.Errorf("API key scopes: %w", err)
	}
	if len(k.Scopes) == 0 {
		k.Scopes = nil
	}
	k.CreatedAt = fromUnixMilli(createdAt)
	k.LastUsedAt = fromNullUnixMilli(lastUsed)
	k.RevokedAt = fromNullUnixMilli(revokedAt)
	return &k, nil
}

// SigningKeys returns every signing key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]*phoneverify.SigningKey, error) {
	const op = "list signing keys"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	keys, err := listSigningKeys(r)
	return keys, mapErr(op, err)
}

// EnsureSigningKey inserts k only if the store holds no signing key yet and
// returns every key. Callers on any number of nodes at once end with exactly
// one key: on PostgreSQL the check and the insert run under a transaction
// advisory lock, on SQLite in one exclusive write transaction.
func (s *Store) EnsureSigningKey(ctx context.Context, k *phoneverify.SigningKey) ([]*phoneverify.SigningKey, error) {
	const op = "ensure signing key"
	var keys []*phoneverify.SigningKey
	err := s.withTx(ctx, op, func(r runner) error {
		if err := s.lockSigningKeys(r); err != nil {
			return mapErr(op, err)
		}
		var n int
		if err := r.queryRow(qCountSigningKeys).Scan(&n); err != nil {
			return mapErr(op, err)
		}
		if n == 0 {
			if err := insertSigningKey(r, op, k); err != nil {
				return err
			}
		}
		var err error
		keys, err = listSigningKeys(r)
		return mapErr(op, err)
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// AddSigningKey inserts k and marks every earlier unretired key retired at
// k.CreatedAt, in one transaction. It returns EConflict if a key with k's id
// exists.
func (s *Store) AddSigningKey(ctx context.Context, k *phoneverify.SigningKey) error {
	const op = "add signing key"
	return s.withTx(ctx, op, func(r runner) error {
		// Serialised like EnsureSigningKey, so that two rotations at once
		// still leave one unretired key.
		if err := s.lockSigningKeys(r); err != nil {
			return mapErr(op, err)
		}
		if _, err := r.exec(qRetireSigningKeys, unixMilli(k.CreatedAt)); err != nil {
			return mapErr(op, err)
		}
		return insertSigningKey(r, op, k)
	})
}

// lockSigningKeys serialises the transactions that change signing keys
// across nodes. SQLite's write transaction is exclusive already.
func (s *Store) lockSigningKeys(r runner) error {
	if s.q.xactLock == "" {
		return nil
	}
	_, err := r.exec(s.q.xactLock, int64(signingKeysLockID))
	return err
}

func insertSigningKey(r runner, op string, k *phoneverify.SigningKey) error {
	if k.ID == "" || len(k.Sealed) == 0 {
		return mapErr(op, errors.New("signing key has no id or key"))
	}
	_, err := r.exec(qInsertSigningKey, k.ID, k.Sealed, unixMilli(k.CreatedAt), nullUnixMilli(k.RetiredAt))
	if isUniqueViolation(err) {
		return conflict(err, "A signing key with this id exists already.")
	}
	return mapErr(op, err)
}

func listSigningKeys(r runner) ([]*phoneverify.SigningKey, error) {
	rows, err := r.query(qSelectSigningKeys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []*phoneverify.SigningKey
	for rows.Next() {
		var (
			k         phoneverify.SigningKey
			createdAt int64
			retiredAt sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.Sealed, &createdAt, &retiredAt); err != nil {
			return nil, err
		}
		k.CreatedAt = fromUnixMilli(createdAt)
		k.RetiredAt = fromNullUnixMilli(retiredAt)
		keys = append(keys, &k)
	}
	return keys, rows.Err()
}
