package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/phoneverify/phoneverify"
)

// DefaultService returns the service marked as default. It returns ENotFound
// if there is none yet.
func (s *Store) DefaultService(ctx context.Context) (*phoneverify.Service, error) {
	return s.readService(ctx, "read default service", qSelectDefaultService)
}

// Service returns the service with the given id. It returns ENotFound if
// there is none.
func (s *Store) Service(ctx context.Context, id string) (*phoneverify.Service, error) {
	return s.readService(ctx, "read service", qSelectService, id)
}

func (s *Store) readService(ctx context.Context, op, query string, args ...any) (*phoneverify.Service, error) {
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	svc, err := scanService(r.queryRow(query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("service")
	}
	if err != nil {
		return nil, mapErr(op, err)
	}
	return svc, nil
}

// Services returns every service, oldest first.
func (s *Store) Services(ctx context.Context) ([]*phoneverify.Service, error) {
	const op = "list services"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	rows, err := r.query(qSelectServices)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	var out []*phoneverify.Service
	for rows.Next() {
		svc, err := scanService(rows)
		if err != nil {
			return nil, mapErr(op, err)
		}
		out = append(out, svc)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(op, err)
	}
	return out, nil
}

// CreateService inserts svc; svc.ID must be set. It returns EConflict if a
// service with that id exists, or if svc.IsDefault is set and a default
// service exists already.
func (s *Store) CreateService(ctx context.Context, svc *phoneverify.Service) error {
	const op = "create service"
	if svc.ID == "" {
		return mapErr(op, errors.New("service has no id"))
	}
	return s.withTx(ctx, op, func(r runner) error {
		if _, err := r.exec(qInsertService, serviceArgs(svc)...); err != nil {
			if isUniqueViolation(err) {
				return conflict(err, "The service conflicts with an existing one (same id, or a second default).")
			}
			return mapErr(op, err)
		}
		return nil
	})
}

// UpdateService saves every setting of svc if the service is unchanged
// since readAt, in one conditional statement; see
// [phoneverify.Store.UpdateService]. It returns ENotFound if there is no
// service with its id, and EConflict if the service changed since readAt or
// if svc would be a second default service.
func (s *Store) UpdateService(ctx context.Context, svc *phoneverify.Service, readAt time.Time) error {
	const op = "update service"
	return s.withTx(ctx, op, func(r runner) error { return updateService(r, op, svc, readAt) })
}

// UpdateServiceWithFeatures saves svc as [Store.UpdateService] does and f
// with it, in one transaction; see
// [phoneverify.ExtrasStore.UpdateServiceWithFeatures].
func (s *Store) UpdateServiceWithFeatures(ctx context.Context, svc *phoneverify.Service, f *phoneverify.ServiceFeatures, readAt time.Time) error {
	const op = "update service"
	return s.withTx(ctx, op, func(r runner) error {
		if err := updateService(r, op, svc, readAt); err != nil {
			return err
		}
		return saveFeatures(r, op, f)
	})
}

// updateService runs qUpdateService in r's transaction and sets
// svc.UpdatedAt to what it stored.
func updateService(r runner, op string, svc *phoneverify.Service, readAt time.Time) error {
	var stored int64
	err := r.queryRow(qUpdateService, append(serviceArgs(svc), unixMilli(readAt))...).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := scanService(r.queryRow(qSelectService, svc.ID)); errors.Is(err, sql.ErrNoRows) {
			return notFound("service")
		} else if err != nil {
			return mapErr(op, err)
		}
		return phoneverify.Errorf(phoneverify.EConflict, "The service was changed since it was read; read it again and retry.")
	case err != nil:
		if isUniqueViolation(err) {
			return conflict(err, "Another service is the default already.")
		}
		return mapErr(op, err)
	}
	svc.UpdatedAt = fromUnixMilli(stored)
	return nil
}

// UpdateServiceLimits replaces the limits and geo permissions of a service
// and sets its UpdatedAt, in one statement that writes no other setting.
// It returns ENotFound if there is no such service.
func (s *Store) UpdateServiceLimits(ctx context.Context, serviceID string, l *phoneverify.ServiceLimits, at time.Time) error {
	const op = "update service limits"
	return s.withTx(ctx, op, func(r runner) error {
		res, err := r.exec(qUpdateServiceLimits, serviceID, encodeLimits(l), unixMilli(at))
		if err != nil {
			return mapErr(op, err)
		}
		return mustAffectOne(op, res, "service")
	})
}

// serviceArgs returns the arguments of qInsertService and qUpdateService.
func serviceArgs(svc *phoneverify.Service) []any {
	return []any{
		svc.ID, svc.Name, boolInt(svc.IsDefault), svc.CodeLength, svc.CodeTTL.Milliseconds(), svc.MaxSends,
		svc.SendWindow.Milliseconds(), svc.MaxAttempts, svc.Template, svc.WebOTPDomain,
		boolInt(svc.OneSubjectPerPhone), boolInt(svc.RejectAlreadyVerified), svc.TokenTTL.Milliseconds(),
		unixMilli(svc.CreatedAt), unixMilli(svc.UpdatedAt), encodeLimits(&svc.Limits),
	}
}

// encodeLimits renders a service's limits as the JSON of services.limits:
// each limit as "N/DURATION" or "off", an absent one following the default.
func encodeLimits(l *phoneverify.ServiceLimits) string {
	m := map[string]any{}
	for _, name := range phoneverify.LimitNames {
		if p := *l.Field(name); p != nil {
			m[name] = p.String()
		}
	}
	if len(l.AllowCountries) > 0 {
		m["allow_countries"] = l.AllowCountries
	}
	if len(l.DenyCountries) > 0 {
		m["deny_countries"] = l.DenyCountries
	}
	b, _ := json.Marshal(m) // strings and string slices always marshal
	return string(b)
}

// decodeLimits reads what encodeLimits wrote.
func decodeLimits(s string) (phoneverify.ServiceLimits, error) {
	var (
		l   phoneverify.ServiceLimits
		raw map[string]json.RawMessage
	)
	if s == "" {
		return l, nil
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return l, fmt.Errorf("service limits: %w", err)
	}
	for key, v := range raw {
		switch key {
		case "allow_countries":
			if err := json.Unmarshal(v, &l.AllowCountries); err != nil {
				return l, fmt.Errorf("service limits: %s: %w", key, err)
			}
		case "deny_countries":
			if err := json.Unmarshal(v, &l.DenyCountries); err != nil {
				return l, fmt.Errorf("service limits: %s: %w", key, err)
			}
		default:
			f := l.Field(key)
			if f == nil {
				continue // a limit a later version added: ignore it
			}
			var text string
			if err := json.Unmarshal(v, &text); err != nil {
				return l, fmt.Errorf("service limits: %s: %w", key, err)
			}
			lim, err := phoneverify.ParseLimit(text)
			if err != nil {
				return l, fmt.Errorf("service limits: %s: %w", key, err)
			}
			*f = &lim
		}
	}
	return l, nil
}

func scanService(sc scanner) (*phoneverify.Service, error) {
	var (
		svc                                   phoneverify.Service
		isDefault, oneSubject, rejectVerified int64
		codeTTL, sendWindow, tokenTTL         int64
		createdAt, updatedAt                  int64
		limits                                string
	)
	err := sc.Scan(&svc.ID, &svc.Name, &isDefault, &svc.CodeLength, &codeTTL, &svc.MaxSends, &sendWindow,
		&svc.MaxAttempts, &svc.Template, &svc.WebOTPDomain, &oneSubject, &rejectVerified, &tokenTTL,
		&createdAt, &updatedAt, &limits)
	if err != nil {
		return nil, err
	}
	if svc.Limits, err = decodeLimits(limits); err != nil {
		return nil, err
	}
	svc.IsDefault = isDefault != 0
	svc.OneSubjectPerPhone = oneSubject != 0
	svc.RejectAlreadyVerified = rejectVerified != 0
	svc.CodeTTL = time.Duration(codeTTL) * time.Millisecond
	svc.SendWindow = time.Duration(sendWindow) * time.Millisecond
	svc.TokenTTL = time.Duration(tokenTTL) * time.Millisecond
	svc.CreatedAt = fromUnixMilli(createdAt)
	svc.UpdatedAt = fromUnixMilli(updatedAt)
	return &svc, nil
}
