package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/url"
	"sort"
	"strings"
)

// ValidateSignature reports whether header, the X-Twilio-Signature of a
// request Twilio sent to fullURL with the form-encoded POST parameters form,
// was made with authToken.
//
// Following "Secure webhooks" (https://www.twilio.com/docs/usage/webhooks/webhooks-security):
// the signed string is the full URL (scheme, host, path and query string,
// exactly as configured in Twilio) followed by every POST parameter name and
// value, sorted by name, with no delimiters; the signature is the base64 of
// its HMAC-SHA1 keyed with the Auth Token. A parameter sent several times
// contributes each of its values in sorted order. As Twilio's own libraries
// do, the URL is checked both with and without the scheme's default port,
// because Twilio is not consistent about including it. The comparison is in
// constant time.
func ValidateSignature(authToken, fullURL string, form url.Values, header string) bool {
	if authToken == "" || header == "" {
		return false
	}
	params := signedParams(form)
	got := []byte(header)
	ok := false
	for _, u := range urlVariants(fullURL) {
		// Evaluate every variant so timing does not tell which one matched.
		if hmac.Equal([]byte(signString(authToken, u, params)), got) {
			ok = true
		}
	}
	return ok
}

// Sign returns the X-Twilio-Signature Twilio would send with a request to
// fullURL carrying the POST parameters form, by the scheme
// [ValidateSignature] checks: for tests and tools that stand in for Twilio.
func Sign(authToken, fullURL string, form url.Values) string {
	return signString(authToken, fullURL, signedParams(form))
}

// signedParams is the parameter part of the signed string: every name and
// value, sorted by name and then by value, with no delimiters.
func signedParams(form url.Values) string {
	var params strings.Builder
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := append([]string(nil), form[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			params.WriteString(k)
			params.WriteString(v)
		}
	}
	return params.String()
}

func signString(authToken, u, params string) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(u))
	mac.Write([]byte(params))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// urlVariants returns raw as given and raw with the port changed: a URL
// without a port also gets the scheme's default one (https 443, http 80),
// and a URL with a port also gets none.
func urlVariants(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return []string{raw}
	}
	v := *u
	switch {
	case u.Port() != "":
		v.Host = u.Hostname()
		if strings.Contains(v.Host, ":") {
			v.Host = "[" + v.Host + "]"
		}
	case u.Scheme == "https":
		v.Host = net.JoinHostPort(u.Hostname(), "443")
	case u.Scheme == "http":
		v.Host = net.JoinHostPort(u.Hostname(), "80")
	default:
		return []string{raw}
	}
	return []string{raw, v.String()}
}

// ParseStatusCallback extracts from the parameters of a status callback
// (https://www.twilio.com/docs/messaging/guides/track-outbound-message-status)
// the Message SID (what Send returned as ProviderID), its status (queued,
// sending, sent, delivered, undelivered, failed, …) and, for failures,
// Twilio's error code (for example 30003 unreachable handset, 30005 unknown
// destination, 30006 landline or unreachable carrier). The older SmsSid and
// SmsStatus names are read when the newer ones are absent. Check the
// request with [ValidateSignature] first.
func ParseStatusCallback(form url.Values) (messageSid, status, errorCode string) {
	messageSid = form.Get("MessageSid")
	if messageSid == "" {
		messageSid = form.Get("SmsSid")
	}
	status = form.Get("MessageStatus")
	if status == "" {
		status = form.Get("SmsStatus")
	}
	return messageSid, status, form.Get("ErrorCode")
}
