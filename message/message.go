// Package message writes the text message that carries a verification code.
//
// [Render] fills a template with the app's name, the code and its lifetime,
// in the language of the request (or of the number's country), and adds the
// lines that let phones fill the code in by themselves: the Android SMS
// Retriever app hash and the WebOTP origin line. [Segments] tells how many
// SMS a body costs. Built-in templates exist for the locales [Locales]
// lists; a service may replace them with its own template and per-locale
// overrides.
//
// The package holds no mutable state; its package-level values are
// read-only tables.
package message

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Params is what [Render] needs to write one message.
type Params struct {
	// Template is the service's message template; "" means the built-in
	// template of the resolved locale. It may use {app}, {code} and {minutes}.
	Template string
	// Overrides are the service's templates per locale, keyed by language tag
	// ("es", "pt-BR"); they take precedence over Template. Keys match without
	// regard to case, and an empty value counts as no override.
	Overrides map[string]string
	// App is the app's name, for {app}. Line breaks in it become spaces.
	App string
	// Code is the verification code, for {code}: 1 to 32 ASCII letters or digits.
	Code string
	// TTL is how long the code stays valid; {minutes} is TTL in whole
	// minutes, rounded up, and at least 1.
	TTL time.Duration
	// Locale is the language tag the request asked for ("es", "pt-BR",
	// "zh-Hant"), or "".
	Locale string
	// Region is the ISO 3166-1 alpha-2 region of the number ("NP"); it picks
	// the language when Locale is "".
	Region string
	// AppHash is the 11-character hash Android's SMS Retriever API computes
	// for the app; when set it is added on a line of its own.
	AppHash string
	// WebOTPDomain is the host of the web page that reads the code through
	// the WebOTP API; when set, "@domain #code" is added as the last line.
	WebOTPDomain string
	// Amount and Payee, when both set, add a sentence naming what the code
	// confirms ([PSD2Sentence]), as PSD2's dynamic linking asks.
	Amount string
	Payee  string
	// DoNotShareWarning adds [DoNotShareWarning] after the text.
	DoNotShareWarning bool
}

// DoNotShareWarning is the sentence [Params.DoNotShareWarning] adds.
const DoNotShareWarning = "Don't share this code with anyone; our employees will never ask for the code."

// PSD2Sentence is the sentence [Params.Amount] and [Params.Payee] add, with
// %s for the amount and the payee.
const PSD2Sentence = "You are about to send %s to %s."

// Errors returned by [Render] and [CheckTemplate]. Their text is a sentence
// that can be shown to whoever configured the service or sent the request.
var (
	// ErrNoCode is returned for a template without {code}.
	ErrNoCode = errors.New("The message template must contain {code}.")
	// ErrUnknownPlaceholder is wrapped by the error returned for a template
	// with a placeholder other than {app}, {code} and {minutes}, such as a
	// misspelt "{cdoe}". A placeholder is a name of ASCII letters, digits and
	// underscores in braces; other text in braces, like "{ }", is kept as it is.
	ErrUnknownPlaceholder = errors.New("The message template has an unknown placeholder; it may use {app}, {code} and {minutes}.")
	// ErrAppHash is returned for an AppHash that [ValidAppHash] refuses.
	ErrAppHash = errors.New("The app hash must be the 11 characters (letters, digits, + and /) that Android's SMS Retriever API computes for the app.")
	// ErrWebOTPDomain is returned for a WebOTPDomain that is not a bare host name.
	ErrWebOTPDomain = errors.New("The WebOTP domain must be a bare host name, such as example.com.")
	// ErrCode is returned when Params.Code is empty, longer than 32
	// characters or not made of ASCII letters and digits.
	ErrCode = errors.New("The code must be 1 to 32 letters or digits.")
)

// placeholderError names the unknown placeholder of a template.
type placeholderError struct{ name string }

func (e *placeholderError) Error() string {
	return fmt.Sprintf("The message template has an unknown placeholder {%s}; it may use {app}, {code} and {minutes}.", e.name)
}

func (e *placeholderError) Unwrap() error { return ErrUnknownPlaceholder }

// maxPlaceholder is the longest name read as a placeholder; longer text in
// braces is kept as it is.
const maxPlaceholder = 32

// Render returns the text message for p.
//
// The template is the first of: p.Overrides for the request's locale (or,
// when p.Locale is empty or not a well-formed tag, for the language of
// p.Region, as [ResolveLocale] picks it); p.Overrides for that locale's base
// language ("pt" for "pt-BR"); p.Template; the built-in template of
// ResolveLocale(p.Locale, p.Region). In it {app}, {code} and {minutes} are replaced once (values are
// never expanded again), and trailing spaces and line breaks are trimmed.
// Then, if p.AppHash is set, it follows on its own line, and if
// p.WebOTPDomain is set, "@domain #code" follows as the very last line:
//
//	Your Example verification code is 123456
//	FA+9qCX9VSu
//	@example.com #123456
//
// Render returns [ErrCode] for a bad p.Code, [ErrAppHash] for a bad
// p.AppHash, [ErrWebOTPDomain] for a bad p.WebOTPDomain, [ErrNoCode] if the
// chosen template lacks {code}, and an error wrapping
// [ErrUnknownPlaceholder] if it uses another placeholder. It does not fall
// back to another template on error: a service's template that cannot be
// used is a configuration error to fix, best caught by [CheckTemplate] when
// the template is set.
func Render(p Params) (string, error) {
	if !validCode(p.Code) {
		return "", ErrCode
	}
	if p.AppHash != "" && !ValidAppHash(p.AppHash) {
		return "", ErrAppHash
	}
	if p.WebOTPDomain != "" && !validHost(p.WebOTPDomain) {
		return "", ErrWebOTPDomain
	}
	values := map[string]string{
		"app":     oneLine(p.App),
		"code":    p.Code,
		"minutes": strconv.FormatInt(minutes(p.TTL), 10),
	}
	body, err := expand(template(p), values)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(body) + len(p.AppHash) + len(p.WebOTPDomain) + len(p.Code) + 5)
	b.WriteString(strings.TrimRight(body, " \t\r\n"))
	if p.Amount != "" && p.Payee != "" {
		b.WriteByte(' ')
		// "Acme Inc." ends the sentence with its own full stop.
		sentence := fmt.Sprintf(PSD2Sentence, oneLine(p.Amount), oneLine(p.Payee))
		if strings.HasSuffix(sentence, "..") {
			sentence = sentence[:len(sentence)-1]
		}
		b.WriteString(sentence)
	}
	if p.DoNotShareWarning {
		b.WriteByte(' ')
		b.WriteString(DoNotShareWarning)
	}
	if p.AppHash != "" {
		b.WriteByte('\n')
		b.WriteString(p.AppHash)
	}
	if p.WebOTPDomain != "" {
		b.WriteString("\n@")
		b.WriteString(p.WebOTPDomain)
		b.WriteString(" #")
		b.WriteString(p.Code)
	}
	return b.String(), nil
}

// CheckTemplate returns the error [Render] would return for template t: nil
// if t contains {code} and no placeholder other than {app}, {code} and
// {minutes}; [ErrNoCode]; or an error wrapping [ErrUnknownPlaceholder].
// Services should check their template and overrides with it when they are
// set, so that no message fails to render at send time.
func CheckTemplate(t string) error {
	_, err := expand(t, map[string]string{"app": "", "code": "0", "minutes": "1"})
	return err
}

// template picks the template for p; see Render.
func template(p Params) string {
	if len(p.Overrides) > 0 {
		if tag := requestedLocale(p.Locale, p.Region); tag != "" {
			if t, ok := override(p.Overrides, tag); ok {
				return t
			}
			if base := baseLanguage(tag); base != tag {
				if t, ok := override(p.Overrides, base); ok {
					return t
				}
			}
		}
	}
	if p.Template != "" {
		return p.Template
	}
	return builtin[ResolveLocale(p.Locale, p.Region)]
}

// override finds the non-empty override for the canonical tag: the key
// spelt exactly so first, else the first key, in sorted order, that is the
// same tag in another case or with "_" for "-".
func override(overrides map[string]string, tag string) (string, bool) {
	if t := overrides[tag]; t != "" {
		return t, true
	}
	var keys []string
	for k, t := range overrides {
		if t != "" && k != tag && canonicalTag(k) == tag {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "", false
	}
	return overrides[slices.Min(keys)], true
}

// expand replaces the placeholders of t with values in one pass.
func expand(t string, values map[string]string) (string, error) {
	var b strings.Builder
	b.Grow(len(t) + 32)
	hasCode := false
	for {
		open := strings.IndexByte(t, '{')
		if open < 0 {
			b.WriteString(t)
			break
		}
		b.WriteString(t[:open])
		t = t[open:]
		end := strings.IndexByte(t, '}')
		if end < 0 || !isPlaceholderName(t[1:end]) {
			b.WriteByte('{')
			t = t[1:]
			continue
		}
		name := t[1:end]
		v, ok := values[name]
		if !ok {
			return "", &placeholderError{name: name}
		}
		hasCode = hasCode || name == "code"
		b.WriteString(v)
		t = t[end+1:]
	}
	if !hasCode {
		return "", ErrNoCode
	}
	return b.String(), nil
}

// isPlaceholderName reports whether s reads as a placeholder's name.
func isPlaceholderName(s string) bool {
	if s == "" || len(s) > maxPlaceholder {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// minutes returns ttl in minutes, rounded up, at least 1.
func minutes(ttl time.Duration) int64 {
	if ttl <= time.Minute {
		return 1
	}
	m := int64(ttl / time.Minute)
	if ttl%time.Minute != 0 {
		m++
	}
	return m
}

// oneLine replaces line breaks and other control characters in s with
// spaces, so that an app's name cannot add lines to a message (and so move
// or forge the app hash and WebOTP lines).
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\u0085' {
			return ' '
		}
		return r
	}, s)
}

// validCode reports whether code is 1 to 32 ASCII letters or digits.
func validCode(code string) bool {
	return len(code) <= 32 && isAlnum(code)
}

// ValidAppHash reports whether s has the form of an Android SMS Retriever
// app hash: exactly 11 characters of the base64 alphabet A–Z, a–z, 0–9, +
// and /.
func ValidAppHash(s string) bool {
	if len(s) != 11 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// validHost reports whether s is a bare DNS host name in ASCII (an
// internationalised name must be given in its xn-- form): labels of
// letters, digits and inner hyphens, 1 to 63 bytes each, 253 in all.
func validHost(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c == '-' || c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z') {
				return false
			}
		}
	}
	return true
}
