package message

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	t.Parallel()
	overrides := map[string]string{
		"es":    "ES override {code}",
		"pt-BR": "pt-BR override {code}",
		"pt":    "pt override {code}",
		"ne":    "NE override {code}",
		"fr":    "",
	}
	tests := []struct {
		name string
		p    Params
		want string
	}{
		{"built-in English", Params{App: "Example", Code: "123456"}, "Your Example verification code is 123456"},
		{"built-in by locale", Params{App: "Example", Code: "123456", Locale: "de"}, "Ihr Bestätigungscode für Example lautet 123456"},
		{"built-in by base language", Params{App: "Example", Code: "123456", Locale: "fr-CA"}, "Votre code de vérification Example est 123456"},
		{"built-in by region", Params{App: "Example", Code: "123456", Region: "NP"}, "तपाईंको Example प्रमाणीकरण कोड 123456 हो"},
		{"locale beats region", Params{App: "Example", Code: "123456", Locale: "en", Region: "NP"}, "Your Example verification code is 123456"},

		{"service template", Params{Template: "{code} is your {app} code. It expires in {minutes} minutes.", App: "Shop", Code: "4321", TTL: 10 * time.Minute},
			"4321 is your Shop code. It expires in 10 minutes."},
		{"service template beats built-in locale", Params{Template: "Code {code}", Code: "1", Locale: "de"}, "Code 1"},

		{"override exact locale", Params{Template: "T {code}", Overrides: overrides, Code: "1", Locale: "pt-BR"}, "pt-BR override 1"},
		{"override exact locale, other case", Params{Template: "T {code}", Overrides: overrides, Code: "1", Locale: "pt_br"}, "pt-BR override 1"},
		{"override base language", Params{Template: "T {code}", Overrides: overrides, Code: "1", Locale: "pt-PT"}, "pt override 1"},
		{"override base language of es-MX", Params{Template: "T {code}", Overrides: overrides, Code: "1", Locale: "es-MX"}, "ES override 1"},
		{"override by region language", Params{Template: "T {code}", Overrides: overrides, Code: "1", Region: "NP"}, "NE override 1"},
		{"override by region language beats built-in", Params{Overrides: overrides, Code: "1", Region: "MX"}, "ES override 1"},
		{"empty override is no override", Params{Template: "T {code}", Overrides: overrides, Code: "1", Locale: "fr"}, "T 1"},
		{"no override for locale falls to template", Params{Template: "T {code}", Overrides: overrides, Code: "1", Locale: "de"}, "T 1"},
		{"no override falls to built-in", Params{Overrides: overrides, App: "Example", Code: "1", Locale: "de"}, "Ihr Bestätigungscode für Example lautet 1"},
		{"locale beats region for overrides", Params{Template: "T {code}", Overrides: overrides, Code: "1", Locale: "de", Region: "NP"}, "T 1"},
		{"key in another case", Params{Overrides: map[string]string{"PT-br": "x {code}"}, Code: "1", Locale: "pt-BR"}, "x 1"},

		{"minutes round up", Params{Template: "{code} {minutes}", Code: "1", TTL: 90 * time.Second}, "1 2"},
		{"minutes exact", Params{Template: "{code} {minutes}", Code: "1", TTL: 5 * time.Minute}, "1 5"},
		{"minutes at least 1", Params{Template: "{code} {minutes}", Code: "1", TTL: 30 * time.Second}, "1 1"},
		{"minutes for zero TTL", Params{Template: "{code} {minutes}", Code: "1"}, "1 1"},
		{"minutes for negative TTL", Params{Template: "{code} {minutes}", Code: "1", TTL: -time.Hour}, "1 1"},
		{"minutes a day", Params{Template: "{code} {minutes}", Code: "1", TTL: 24 * time.Hour}, "1 1440"},
		{"minutes just over", Params{Template: "{code} {minutes}", Code: "1", TTL: time.Minute + time.Nanosecond}, "1 2"},

		{"placeholders repeat", Params{Template: "{code} {code} {app}{app}", App: "A", Code: "9"}, "9 9 AA"},
		{"values are not expanded again", Params{Template: "{app}: {code}", App: "{code}", Code: "7"}, "{code}: 7"},
		{"other braces stay", Params{Template: "{ } {} {1-2} { code } {code} {code", Code: "7"}, "{ } {} {1-2} { code } 7 {code"},
		{"braces around a placeholder", Params{Template: "{{code}}", Code: "7"}, "{7}"},
		{"line breaks in the app name become spaces", Params{Template: "{app} {code}", App: "Evil\n@evil.com #1\r", Code: "7", WebOTPDomain: "example.com"},
			"Evil @evil.com #1  7\n@example.com #7"},
		{"trailing white space is trimmed", Params{Template: "Code: {code}\n\n  ", Code: "7", AppHash: "FA+9qCX9VSu"}, "Code: 7\nFA+9qCX9VSu"},
		{"multi-line template keeps its lines", Params{Template: "Hello\nCode: {code}", Code: "7", WebOTPDomain: "a.example"}, "Hello\nCode: 7\n@a.example #7"},
		{"app hash then WebOTP", Params{App: "Example", Code: "123456", AppHash: "FA+9qCX9VSu", WebOTPDomain: "example.com"},
			"Your Example verification code is 123456\nFA+9qCX9VSu\n@example.com #123456"},
		{"letters in the code", Params{Template: "{code}", Code: "AB12cd"}, "AB12cd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Render(tt.p)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != tt.want {
				t.Errorf("Render\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	ok := Params{App: "Example", Code: "123456"}
	with := func(f func(*Params)) Params { p := ok; f(&p); return p }
	tests := []struct {
		name string
		p    Params
		want error
	}{
		{"template without code", with(func(p *Params) { p.Template = "Your {app} code" }), ErrNoCode},
		{"override without code", with(func(p *Params) { p.Overrides = map[string]string{"es": "sin código"}; p.Locale = "es" }), ErrNoCode},
		{"unknown placeholder", with(func(p *Params) { p.Template = "{cdoe} {code}" }), ErrUnknownPlaceholder},
		{"placeholder in another case", with(func(p *Params) { p.Template = "{Code}" }), ErrUnknownPlaceholder},
		{"placeholder with underscore", with(func(p *Params) { p.Template = "{code} {app_name}" }), ErrUnknownPlaceholder},
		{"empty code", with(func(p *Params) { p.Code = "" }), ErrCode},
		{"code with space", with(func(p *Params) { p.Code = "123 456" }), ErrCode},
		{"code with newline", with(func(p *Params) { p.Code = "123\n456" }), ErrCode},
		{"code too long", with(func(p *Params) { p.Code = strings.Repeat("1", 33) }), ErrCode},
		{"code in other digits", with(func(p *Params) { p.Code = "१२३४" }), ErrCode},
		{"app hash too short", with(func(p *Params) { p.AppHash = "FA+9qCX9VS" }), ErrAppHash},
		{"app hash too long", with(func(p *Params) { p.AppHash = "FA+9qCX9VSuu" }), ErrAppHash},
		{"app hash with dash", with(func(p *Params) { p.AppHash = "FA-9qCX9VSu" }), ErrAppHash},
		{"WebOTP with scheme", with(func(p *Params) { p.WebOTPDomain = "https://example.com" }), ErrWebOTPDomain},
		{"WebOTP with port", with(func(p *Params) { p.WebOTPDomain = "example.com:8443" }), ErrWebOTPDomain},
		{"WebOTP with space", with(func(p *Params) { p.WebOTPDomain = "example.com #1" }), ErrWebOTPDomain},
		{"WebOTP with newline", with(func(p *Params) { p.WebOTPDomain = "example.com\n" }), ErrWebOTPDomain},
		{"WebOTP empty label", with(func(p *Params) { p.WebOTPDomain = "example..com" }), ErrWebOTPDomain},
		{"WebOTP trailing dot", with(func(p *Params) { p.WebOTPDomain = "example.com." }), ErrWebOTPDomain},
		{"WebOTP hyphen at label start", with(func(p *Params) { p.WebOTPDomain = "-example.com" }), ErrWebOTPDomain},
		{"WebOTP not ASCII", with(func(p *Params) { p.WebOTPDomain = "bücher.example" }), ErrWebOTPDomain},
		{"WebOTP label too long", with(func(p *Params) { p.WebOTPDomain = strings.Repeat("a", 64) + ".com" }), ErrWebOTPDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Render(tt.p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Render = %q, %v; want %v", got, err, tt.want)
			}
			if got != "" {
				t.Errorf("Render returned %q with its error", got)
			}
		})
	}
}

func TestRenderUnknownPlaceholderNamesIt(t *testing.T) {
	t.Parallel()
	_, err := Render(Params{Template: "{code} {cdoe}", Code: "1"})
	if err == nil || !strings.Contains(err.Error(), "{cdoe}") {
		t.Errorf("error %v does not name {cdoe}", err)
	}
}

func TestCheckTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tmpl string
		want error
	}{
		{"Your {app} code is {code}", nil},
		{"{code}", nil},
		{"{code} expires in {minutes} min", nil},
		{"{ {code} }", nil},
		{"", ErrNoCode},
		{"Your code", ErrNoCode},
		{"{ code }", ErrNoCode},
		{"{code} {name}", ErrUnknownPlaceholder},
		{"{CODE}", ErrUnknownPlaceholder},
	}
	for _, tt := range tests {
		if err := CheckTemplate(tt.tmpl); !errors.Is(err, tt.want) {
			t.Errorf("CheckTemplate(%q) = %v, want %v", tt.tmpl, err, tt.want)
		}
	}
}

func TestValidAppHash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    string
		want bool
	}{
		{"FA+9qCX9VSu", true}, {"abcdefghijk", true}, {"0123456789/", true}, {"+++++++++++", true},
		{"", false}, {"FA+9qCX9VS", false}, {"FA+9qCX9VSuX", false}, {"FA+9qCX9VS=", false},
		{"FA-9qCX9VSu", false}, {"FA 9qCX9VSu", false}, {"FA+9qCX9VS\n", false}, {"FA+9qCX9VSü", false},
	}
	for _, tt := range tests {
		if got := ValidAppHash(tt.s); got != tt.want {
			t.Errorf("ValidAppHash(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestErrorsAreSentences(t *testing.T) {
	t.Parallel()
	for _, err := range []error{ErrNoCode, ErrUnknownPlaceholder, ErrAppHash, ErrWebOTPDomain, ErrCode, &placeholderError{"x"}} {
		msg := err.Error()
		if msg[0] < 'A' || msg[0] > 'Z' || !strings.HasSuffix(msg, ".") {
			t.Errorf("%q is not a sentence", msg)
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add("", "Example", "123456", "", "", "", "", int64(10*time.Minute))
	f.Add("{code} is your {app} code, valid {minutes} min", "Shop", "4821", "es", "MX", "FA+9qCX9VSu", "example.com", int64(90*time.Second))
	f.Add("{app}{code}{{code}}{", "{code}", "1", "zh-Hant", "TW", "", "a.b", int64(-1))
	f.Add("{cdoe}", "App\n@x #1", "99", "pt_br", "BR", "bad", "bad domain", int64(0))
	f.Add("😀{code}", "€", "A1", "xx-YY", "NP", "abcdefghijk", "xn--bcher-kva.example", int64(1<<62))
	f.Fuzz(func(t *testing.T, tmpl, app, code, locale, region, hash, domain string, ttl int64) {
		p := Params{
			Template: tmpl, App: app, Code: code, TTL: time.Duration(ttl), Locale: locale, Region: region,
			AppHash: hash, WebOTPDomain: domain,
			Overrides: map[string]string{"es": "ES {code}", locale: tmpl},
		}
		body, err := Render(p)
		if err != nil {
			if body != "" {
				t.Fatalf("Render returned %q with %v", body, err)
			}
			return
		}
		if !strings.Contains(body, code) {
			t.Fatalf("Render(%+v) = %q lacks the code", p, body)
		}
		lines := strings.Split(body, "\n")
		if domain != "" {
			if last := lines[len(lines)-1]; last != "@"+domain+" #"+code {
				t.Fatalf("Render(%+v) = %q: last line %q is not the WebOTP line", p, body, last)
			}
			lines = lines[:len(lines)-1]
		}
		if hash != "" && lines[len(lines)-1] != hash {
			t.Fatalf("Render(%+v) = %q: app hash line missing", p, body)
		}
		if _, n := Segments(body); n < 1 {
			t.Fatalf("Segments(%q) = %d", body, n)
		}
		ResolveLocale(locale, region)
		ValidLocale(locale)
	})
}
