package message

import (
	"slices"
	"strings"
	"testing"
)

// required are the locales the product promises.
var required = []string{
	"en", "es", "fr", "de", "it", "pt", "nl", "sv", "da", "nb", "fi", "pl", "cs", "sk", "hu", "ro",
	"el", "tr", "ru", "uk", "ar", "he", "hi", "ne", "bn", "id", "ms", "vi", "th", "zh", "zh-Hant",
	"ja", "ko", "tl", "sw",
}

// gsm7Locales are the built-in locales whose message must stay in the GSM-7
// alphabet, so that a stray accent does not halve what fits in an SMS.
var gsm7Locales = []string{"da", "de", "en", "fi", "fr", "id", "it", "ms", "nb", "nl", "pl", "ro", "sv", "sw", "tl"}

func TestLocales(t *testing.T) {
	t.Parallel()
	got := Locales()
	if !slices.IsSorted(got) {
		t.Errorf("Locales() = %q is not sorted", got)
	}
	if len(got) < 30 {
		t.Errorf("Locales() has %d locales, want at least 30", len(got))
	}
	for _, l := range required {
		if !slices.Contains(got, l) {
			t.Errorf("Locales() lacks %q", l)
		}
	}
	got[0] = "changed"
	if Locales()[0] == "changed" {
		t.Error("Locales() shares its slice between calls")
	}
}

func TestBuiltinDefaultEnglish(t *testing.T) {
	t.Parallel()
	if got, want := builtin["en"], "Your {app} verification code is {code}"; got != want {
		t.Errorf("built-in English = %q, want %q", got, want)
	}
}

// TestBuiltinTemplates renders every built-in locale and checks that the
// message holds the app and the code and fits one SMS, alone and with each
// of the lines phones read codes from.
func TestBuiltinTemplates(t *testing.T) {
	t.Parallel()
	for _, locale := range Locales() {
		t.Run(locale, func(t *testing.T) {
			t.Parallel()
			tmpl := builtin[locale]
			if err := CheckTemplate(tmpl); err != nil {
				t.Fatalf("CheckTemplate: %v", err)
			}
			if strings.Count(tmpl, "{code}") != 1 || strings.Count(tmpl, "{app}") != 1 || strings.Contains(tmpl, "{minutes}") {
				t.Errorf("template %q needs {app} and {code} once each", tmpl)
			}
			if tmpl != strings.TrimSpace(tmpl) || strings.ContainsAny(tmpl, "\n\r\t") {
				t.Errorf("template %q has stray white space", tmpl)
			}
			if got := ResolveLocale(locale, ""); got != locale {
				t.Errorf("ResolveLocale(%q, \"\") = %q", locale, got)
			}
			body, err := Render(Params{App: "Example", Code: "123456", Locale: locale})
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if !strings.Contains(body, "Example") || !strings.Contains(body, "123456") || strings.Contains(body, "{") {
				t.Errorf("Render = %q", body)
			}
			enc, n := Segments(body)
			if n != 1 {
				t.Errorf("Render = %q is %d %s segments, want 1", body, n, enc)
			}
			if slices.Contains(gsm7Locales, locale) && enc != EncodingGSM7 {
				t.Errorf("Render = %q is %s, want GSM-7", body, enc)
			}

			const hash, domain = "FA+9qCX9VSu", "example.com"
			full, err := Render(Params{App: "Example", Code: "123456", Locale: locale, AppHash: hash, WebOTPDomain: domain})
			if err != nil {
				t.Fatalf("Render with app hash and WebOTP: %v", err)
			}
			if want := body + "\n" + hash + "\n@example.com #123456"; full != want {
				t.Errorf("Render with app hash and WebOTP\n got %q\nwant %q", full, want)
			}
			lines := strings.Split(full, "\n")
			if len(lines) != 3 || lines[1] != hash || lines[2] != "@example.com #123456" {
				t.Errorf("lines of %q = %q", full, lines)
			}
			withHash, _ := Render(Params{App: "Example", Code: "123456", Locale: locale, AppHash: hash})
			if withHash != body+"\n"+hash {
				t.Errorf("Render with app hash = %q", withHash)
			}
			withWebOTP, _ := Render(Params{App: "Example", Code: "123456", Locale: locale, WebOTPDomain: domain})
			if withWebOTP != body+"\n@example.com #123456" {
				t.Errorf("Render with WebOTP = %q", withWebOTP)
			}
		})
	}
}

func TestResolveLocale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, locale, region, want string
	}{
		{"exact", "es", "", "es"},
		{"exact beats region", "fr", "DE", "fr"},
		{"upper case", "ES", "", "es"},
		{"region subtag", "pt-BR", "", "pt"},
		{"lower-case region subtag", "pt-br", "", "pt"},
		{"underscore", "pt_BR", "", "pt"},
		{"Portugal", "pt-PT", "", "pt-PT"},
		{"Portugal lower case underscore", "pt_pt", "", "pt-PT"},
		{"Angola reads Portugal's Portuguese", "pt-AO", "", "pt-PT"},
		{"plain pt is Brazil's", "pt", "PT", "pt"},
		{"Latin American Spanish", "es-419", "", "es"},
		{"Mexican Spanish", "es-MX", "US", "es"},
		{"traditional Chinese", "zh-Hant", "", "zh-Hant"},
		{"traditional Chinese lower case", "zh-hant", "", "zh-Hant"},
		{"traditional Chinese with region", "zh-Hant-HK", "", "zh-Hant"},
		{"Taiwan", "zh-TW", "", "zh-Hant"},
		{"Hong Kong", "zh-HK", "", "zh-Hant"},
		{"simplified Chinese", "zh-Hans", "", "zh"},
		{"simplified Chinese in Taiwan", "zh-Hans-TW", "", "zh"},
		{"mainland Chinese", "zh-CN", "TW", "zh"},
		{"plain Chinese", "zh", "", "zh"},
		{"Norwegian", "no", "", "nb"},
		{"Nynorsk", "nn-NO", "", "nb"},
		{"Filipino", "fil", "", "tl"},
		{"Filipino Philippines", "fil-PH", "", "tl"},
		{"old Hebrew code", "iw", "", "he"},
		{"old Indonesian code", "in", "", "id"},
		{"English variant", "en-GB", "NP", "en"},
		{"Serbian script and region falls to region", "sr-Latn-RS", "", "en"},

		{"no locale Nepal", "", "NP", "ne"},
		{"no locale Brazil", "", "BR", "pt"},
		{"no locale Portugal", "", "PT", "pt-PT"},
		{"no locale Germany", "", "DE", "de"},
		{"no locale Austria", "", "AT", "de"},
		{"no locale France", "", "FR", "fr"},
		{"no locale Japan", "", "JP", "ja"},
		{"no locale China", "", "CN", "zh"},
		{"no locale Taiwan", "", "TW", "zh-Hant"},
		{"no locale Mexico", "", "MX", "es"},
		{"no locale Tanzania", "", "TZ", "sw"},
		{"no locale India is English", "", "IN", "en"},
		{"no locale Kenya is English", "", "KE", "en"},
		{"no locale Philippines is English", "", "PH", "en"},
		{"no locale United States", "", "US", "en"},
		{"lower-case region", "", "np", "ne"},
		{"unknown region", "", "ZZ", "en"},
		{"nothing", "", "", "en"},
		{"unknown language falls to region", "gd", "FR", "fr"},
		{"unknown language no region", "xx", "", "en"},
		{"malformed locale falls to region", "not a locale", "JP", "ja"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ResolveLocale(tt.locale, tt.region); got != tt.want {
				t.Errorf("ResolveLocale(%q, %q) = %q, want %q", tt.locale, tt.region, got, tt.want)
			}
		})
	}
}

func TestTablesPointAtBuiltins(t *testing.T) {
	t.Parallel()
	for region, l := range regionLanguages {
		if _, ok := builtin[l]; !ok {
			t.Errorf("region %s maps to %q, which is not built in", region, l)
		}
		if len(region) != 2 || strings.ToUpper(region) != region {
			t.Errorf("region %q is not an upper-case alpha-2 code", region)
		}
	}
	for from, to := range aliases {
		if _, ok := builtin[to]; !ok {
			t.Errorf("alias %q maps to %q, which is not built in", from, to)
		}
	}
	for _, l := range Locales() {
		if canonicalTag(l) != l {
			t.Errorf("built-in locale %q is not in canonical form %q", l, canonicalTag(l))
		}
	}
}

func TestValidLocale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tag  string
		want bool
	}{
		{"en", true}, {"es", true}, {"fil", true}, {"pt-BR", true}, {"pt_BR", true}, {"pt-br", true},
		{"zh-Hant", true}, {"zh-Hant-TW", true}, {"es-419", true}, {"sr-Latn-RS", true},
		{"de-CH-1996", true}, {"sl-rozaj", true}, {"xx-YY", true}, {"EN", true},

		{"", false}, {"e", false}, {"engl", false}, {"english", false}, {"en-", false}, {"-en", false},
		{"en--US", false}, {"en_-US", false}, {"en US", false}, {"en-U", false}, {"en-USA", false},
		{"en-12", false}, {"e1", false}, {"en-u-ca-gregory", false}, {"x-private", false},
		{"en-US-verylongvariant", false}, {"ñe", false}, {"en\n", false},
		{"en-" + strings.Repeat("abcde-", 6) + "abcde", false},
	}
	for _, tt := range tests {
		if got := ValidLocale(tt.tag); got != tt.want {
			t.Errorf("ValidLocale(%q) = %v, want %v", tt.tag, got, tt.want)
		}
	}
}

func TestCanonicalTag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"pt_br": "pt-BR", "ZH-HANT-tw": "zh-Hant-TW", "es-419": "es-419", "EN": "en",
		"de-ch-1996": "de-CH-1996", "bad tag": "",
	} {
		if got := canonicalTag(in); got != want {
			t.Errorf("canonicalTag(%q) = %q, want %q", in, got, want)
		}
	}
}
