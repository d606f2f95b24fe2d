package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// apiClient is how the demo apps reach phoneverify: its public native API,
// over HTTP, with an API key — what any application does. Nothing here
// calls the engine directly.
type apiClient struct {
	base string
	key  string
	http *http.Client
}

// apiVerification is the part of the verification resource the demo uses.
type apiVerification struct {
	ID                string    `json:"id"`
	To                string    `json:"to"`
	Status            string    `json:"status"`
	SendCount         int       `json:"send_count"`
	AttemptsRemaining int       `json:"attempts_remaining"`
	ExpiresAt         time.Time `json:"expires_at"`
	Amount            string    `json:"amount"`
	Payee             string    `json:"payee"`
	// Token is the signed proof a successful check returns.
	Token string `json:"token"`
}

// startParams is the body of POST /v1/verifications.
type startParams struct {
	To      string `json:"to"`
	Subject string `json:"subject,omitempty"`
	Amount  string `json:"amount,omitempty"`
	Payee   string `json:"payee,omitempty"`
	Locale  string `json:"locale,omitempty"`
}

// checkParams is the body of POST /v1/verifications/check.
type checkParams struct {
	ID      string `json:"id"`
	Code    string `json:"code"`
	Subject string `json:"subject,omitempty"`
	Amount  string `json:"amount,omitempty"`
	Payee   string `json:"payee,omitempty"`
}

// apiError is an error answer of the API: {"error": {...}}.
type apiError struct {
	Status            int    `json:"-"`
	Code              string `json:"code"`
	Message           string `json:"message"`
	Param             string `json:"param"`
	AttemptsRemaining *int   `json:"attempts_remaining"`
	RetryAfter        int    `json:"retry_after"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("phoneverify API: %d %s: %s", e.Status, e.Code, e.Message)
}

// start sends a code: POST /v1/verifications.
func (c *apiClient) start(ctx context.Context, p startParams) (*apiVerification, error) {
	var v apiVerification
	if err := c.post(ctx, "/v1/verifications", p, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// check checks a code: POST /v1/verifications/check.
func (c *apiClient) check(ctx context.Context, p checkParams) (*apiVerification, error) {
	var v apiVerification
	if err := c.post(ctx, "/v1/verifications/check", p, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func (c *apiClient) post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.base, "/")+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("call phoneverify: %w", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode >= 300 {
		var eb struct {
			Error apiError `json:"error"`
		}
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Code == "" {
			return &apiError{Status: res.StatusCode, Code: "internal", Message: "phoneverify answered " + res.Status}
		}
		eb.Error.Status = res.StatusCode
		return &eb.Error
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}
