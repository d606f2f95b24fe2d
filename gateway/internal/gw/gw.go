// Package gw holds what the gateway packages share: checking a message,
// making HTTP calls that keep connections reusable, classifying failures
// into *phoneverify.DeliveryError, and keeping codes and numbers out of error
// text.
package gw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/phoneverify/phoneverify"
)

// MaxBody bounds how much of a provider's answer is read; providers answer
// sending requests with a few hundred bytes.
const MaxBody = 1 << 20

// maxDrain bounds how much of an unread body is discarded to let the
// connection be reused; a longer body is cheaper to abandon.
const maxDrain = 256 << 10

// DefaultTimeout bounds a request when the caller's client has no timeout
// of its own and the context has no deadline.
const DefaultTimeout = 30 * time.Second

// Client returns c, or a new client with [DefaultTimeout] when c is nil.
func Client(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{Timeout: DefaultTimeout}
}

// BaseURL checks that raw is an absolute http or https URL and returns it
// without a trailing slash, ready to have a path appended.
func BaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("base URL %q must be an absolute http or https URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("base URL %q must not have a query or fragment", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// Digits returns the digits of an E.164 number ("+9779812345678" gives
// "9779812345678"). It reports false when to is not "+" followed by 7 to 15
// digits, the first not 0.
func Digits(to string) (string, bool) {
	d, ok := strings.CutPrefix(to, "+")
	if !ok || len(d) < 7 || len(d) > 15 || d[0] == '0' {
		return "", false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return "", false
		}
	}
	return d, true
}

// CheckMessage returns the digits of m.To, or a permanent delivery error
// when m is nil, has no body, or its destination is not E.164. The error
// never repeats the number.
func CheckMessage(gateway string, m *phoneverify.Message) (string, error) {
	if m == nil || m.Body == "" {
		return "", &phoneverify.DeliveryError{Gateway: gateway, Permanent: true, Reason: "empty message"}
	}
	d, ok := Digits(m.To)
	if !ok {
		return "", &phoneverify.DeliveryError{Gateway: gateway, Permanent: true,
			Reason: "destination is not an E.164 number"}
	}
	return d, nil
}

// Response is a provider's answer, read in full (up to [MaxBody]).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends req and reads the answer. The body is drained and closed before
// Do returns, so the keep-alive connection goes back to the pool. An error
// means no usable answer arrived; see [TransportError].
func Do(client *http.Client, req *http.Request) (*Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		_ = resp.Body.Close()
	}()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// TransportError turns the error of a request that got no answer (timeout,
// refused or reset connection, canceled context) into a temporary delivery
// error. The request URL is dropped from the wrapped error: it may hold an
// account id or a webhook token.
func TransportError(gateway string, err error) *phoneverify.DeliveryError {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	reason := "connection error"
	var nerr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		reason = "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		reason = "timeout"
	}
	return &phoneverify.DeliveryError{Gateway: gateway, Reason: reason, Err: err}
}

// TemporaryStatus reports whether an HTTP status means a retry may succeed:
// 408, 425, 429 and every 5xx.
func TemporaryStatus(status int) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status == http.StatusTooManyRequests:
		return true
	case status >= 500:
		return true
	}
	return false
}

// StatusError is the delivery error for a refused HTTP request whose body
// carried no code the gateway knows: temporary for [TemporaryStatus], else
// permanent, and marked Account for 401, 402 and 403 (credentials, payment,
// permissions: another gateway may still deliver). Code defaults to the
// HTTP status and RetryAfter comes from the Retry-After header.
func StatusError(gateway string, resp *Response, code, reason string) *phoneverify.DeliveryError {
	if code == "" {
		code = strconv.Itoa(resp.Status)
	}
	if reason == "" {
		reason = http.StatusText(resp.Status)
	}
	return &phoneverify.DeliveryError{
		Gateway:    gateway,
		Permanent:  !TemporaryStatus(resp.Status),
		Account:    AccountStatus(resp.Status),
		Code:       code,
		Reason:     reason,
		RetryAfter: RetryAfter(resp.Header, time.Now()),
	}
}

// AccountStatus reports whether an HTTP status blames the gateway account
// rather than the message: 401, 402 and 403.
func AccountStatus(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusPaymentRequired || status == http.StatusForbidden
}

// RetryAfter parses a Retry-After header, given either as delay-seconds or
// as an HTTP date (measured from now). It returns 0 when the header is
// absent, malformed or in the past.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 || n > int64(24*time.Hour/time.Second) {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return 0
	}
	return t.Sub(now)
}

// maxReason bounds the provider text kept in a DeliveryError.
const maxReason = 300

// Redact makes provider error text safe to store: it replaces the message's
// code and destination (in E.164, digit-only and national forms) wherever
// they appear, masks any other run of seven or more digits, and caps the
// length. Providers do echo the number back ("The 'To' number … is not a
// valid phone number").
func Redact(text string, m *phoneverify.Message) string {
	if m != nil {
		// The number first: a code may be a substring of it, not the reverse.
		if d, ok := Digits(m.To); ok {
			text = strings.ReplaceAll(text, m.To, Mask(m.To))
			text = strings.ReplaceAll(text, d, Mask(d))
			if len(d) > 10 {
				national := d[len(d)-10:]
				text = strings.ReplaceAll(text, national, Mask(national))
			}
		}
		if m.Code != "" {
			text = strings.ReplaceAll(text, m.Code, "[code]")
		}
	}
	text = maskDigitRuns(text)
	if len(text) > maxReason {
		text = text[:maxReason] + "…"
	}
	return strings.TrimSpace(text)
}

// Mask hides the middle of a phone number the way phoneverify's logs do:
// "+9779812345678" becomes "+97798*****78". Strings of fewer than seven
// digits are returned unchanged.
func Mask(number string) string {
	prefix := ""
	d := number
	if strings.HasPrefix(d, "+") {
		prefix, d = "+", d[1:]
	}
	if len(d) < 7 {
		return number
	}
	keep := 5
	if len(d) < 10 {
		keep = 2
	}
	return prefix + d[:keep] + strings.Repeat("*", len(d)-keep-2) + d[len(d)-2:]
}

func maskDigitRuns(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] < '0' || s[i] > '9' {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		b.WriteString(Mask(s[i:j]))
		i = j
	}
	return b.String()
}
