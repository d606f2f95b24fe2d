package message

import (
	"slices"
	"strings"
)

// DefaultLocale is the built-in locale used when nothing better is known.
const DefaultLocale = "en"

// builtin holds the built-in message of each locale. Each means "Your {app}
// verification code is {code}" and fits one SMS with a short app name and a
// six-digit code. Latin-script languages are worded to stay within the GSM-7
// alphabet where a correct wording allows it (a dropped possessive in Polish
// and Romanian, for one); where the language's spelling needs letters GSM-7
// lacks (Spanish "código", Portuguese "verificação", Czech, Slovak,
// Hungarian, Croatian, Catalan, Turkish, Vietnamese) the message goes as
// UCS-2, still in one SMS.
var builtin = map[string]string{
	"ar":      "رمز التحقق الخاص بك في {app} هو {code}",
	"bg":      "Вашият код за потвърждение за {app} е {code}",
	"bn":      "আপনার {app} যাচাইকরণ কোড হল {code}",
	"ca":      "El teu codi de verificació de {app} és {code}",
	"cs":      "Váš ověřovací kód pro {app} je {code}",
	"da":      "Din bekræftelseskode til {app} er {code}",
	"de":      "Ihr Bestätigungscode für {app} lautet {code}",
	"el":      "Ο κωδικός επαλήθευσής σας για το {app} είναι {code}",
	"en":      "Your {app} verification code is {code}",
	"es":      "Tu código de verificación de {app} es {code}",
	"fa":      "کد تأیید {app} شما {code} است",
	"fi":      "Vahvistuskoodisi palveluun {app} on {code}",
	"fr":      "Votre code de vérification {app} est {code}",
	"he":      "קוד האימות שלך ב-{app} הוא {code}",
	"hi":      "आपका {app} सत्यापन कोड {code} है",
	"hr":      "Vaš kôd za potvrdu u {app} je {code}",
	"hu":      "A(z) {app} ellenőrző kódod: {code}",
	"id":      "Kode verifikasi {app} Anda adalah {code}",
	"it":      "Il tuo codice di verifica {app} è {code}",
	"ja":      "{app}の認証コードは{code}です",
	"ko":      "{app} 인증 코드는 {code}입니다",
	"ms":      "Kod pengesahan {app} anda ialah {code}",
	"nb":      "Din bekreftelseskode for {app} er {code}",
	"ne":      "तपाईंको {app} प्रमाणीकरण कोड {code} हो",
	"nl":      "Je verificatiecode voor {app} is {code}",
	"pl":      "Kod weryfikacyjny {app} to {code}",
	"pt":      "Seu código de verificação para {app} é {code}",
	"pt-PT":   "O seu código de verificação para {app} é {code}",
	"ro":      "Codul de verificare pentru {app} este {code}",
	"ru":      "Ваш код подтверждения {app}: {code}",
	"sk":      "Váš overovací kód pre {app} je {code}",
	"sv":      "Din verifieringskod för {app} är {code}",
	"sw":      "Msimbo wako wa uthibitishaji wa {app} ni {code}",
	"th":      "รหัสยืนยัน {app} ของคุณคือ {code}",
	"tl":      "Ang iyong verification code para sa {app} ay {code}",
	"tr":      "{app} doğrulama kodunuz: {code}",
	"uk":      "Ваш код підтвердження {app}: {code}",
	"ur":      "آپ کا {app} تصدیقی کوڈ {code} ہے",
	"vi":      "Mã xác minh {app} của bạn là {code}",
	"zh":      "您的{app}验证码是：{code}",
	"zh-Hant": "您的{app}驗證碼是：{code}",
}

// aliases maps language tags to the built-in locale that serves them:
// deprecated codes, macrolanguages and close written standards.
var aliases = map[string]string{
	"fil":     "tl",
	"in":      "id",
	"iw":      "he",
	"nn":      "nb", // Nynorsk readers read Bokmål; English would be further.
	"no":      "nb",
	"zh-Hans": "zh",
}

// zhHantRegions are where Chinese is written in traditional characters.
var zhHantRegions = map[string]bool{"TW": true, "HK": true, "MO": true}

// regionLanguages maps a region (ISO 3166-1 alpha-2) to the built-in locale
// most people there read, for messages to numbers whose request named no
// locale. Regions not listed get English. English is also the choice where
// text messages are mostly English even though another language is more
// spoken, such as India, Pakistan, Kenya, the Philippines and Nigeria.
// Nepal gets Nepali. In Belgium Dutch (the majority) is chosen, in
// Switzerland German, in Canada English.
var regionLanguages = map[string]string{
	// Arabic.
	"AE": "ar", "BH": "ar", "DZ": "ar", "EG": "ar", "IQ": "ar", "JO": "ar", "KW": "ar",
	"LB": "ar", "LY": "ar", "MA": "ar", "MR": "ar", "OM": "ar", "PS": "ar", "QA": "ar",
	"SA": "ar", "SD": "ar", "SY": "ar", "TN": "ar", "YE": "ar",
	// Spanish.
	"AR": "es", "BO": "es", "CL": "es", "CO": "es", "CR": "es", "CU": "es", "DO": "es",
	"EC": "es", "ES": "es", "GQ": "es", "GT": "es", "HN": "es", "MX": "es", "NI": "es",
	"PA": "es", "PE": "es", "PR": "es", "PY": "es", "SV": "es", "UY": "es", "VE": "es",
	// French.
	"BF": "fr", "BI": "fr", "BJ": "fr", "BL": "fr", "CD": "fr", "CF": "fr", "CG": "fr",
	"CI": "fr", "CM": "fr", "DJ": "fr", "FR": "fr", "GA": "fr", "GF": "fr", "GN": "fr",
	"GP": "fr", "HT": "fr", "KM": "fr", "LU": "fr", "MC": "fr", "MF": "fr", "MG": "fr",
	"ML": "fr", "MQ": "fr", "NC": "fr", "NE": "fr", "PF": "fr", "PM": "fr", "RE": "fr",
	"SN": "fr", "TD": "fr", "TG": "fr", "WF": "fr", "YT": "fr",
	// Portuguese: Brazil's, and Portugal's for the other lusophone countries.
	"BR": "pt",
	"AO": "pt-PT", "CV": "pt-PT", "GW": "pt-PT", "MZ": "pt-PT", "PT": "pt-PT", "ST": "pt-PT",
	// German, Italian, Dutch.
	"AT": "de", "CH": "de", "DE": "de", "LI": "de",
	"IT": "it", "SM": "it", "VA": "it",
	"AW": "nl", "BE": "nl", "BQ": "nl", "CW": "nl", "NL": "nl", "SR": "nl", "SX": "nl",
	// Nordic.
	"AX": "sv", "SE": "sv",
	"DK": "da", "FO": "da", "GL": "da",
	"NO": "nb", "SJ": "nb",
	"FI": "fi",
	// Central and Eastern Europe.
	"PL": "pl", "CZ": "cs", "SK": "sk", "HU": "hu", "RO": "ro", "MD": "ro",
	"HR": "hr", "BG": "bg", "GR": "el", "CY": "el", "TR": "tr", "UA": "uk",
	"RU": "ru", "BY": "ru", "KZ": "ru", "KG": "ru",
	// Middle East, South and East Asia.
	"IL": "he", "IR": "fa", "AF": "fa",
	"NP": "ne", "BD": "bn",
	"ID": "id", "MY": "ms", "BN": "ms",
	"VN": "vi", "TH": "th",
	"CN": "zh", "TW": "zh-Hant", "HK": "zh-Hant", "MO": "zh-Hant",
	"JP": "ja", "KR": "ko",
	// Africa.
	"TZ": "sw",
	// Catalan.
	"AD": "ca",
}

// Locales returns the built-in locales, sorted: "ar", "bg", …, "zh-Hant".
func Locales() []string {
	out := make([]string, 0, len(builtin))
	for l := range builtin {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// ResolveLocale returns the built-in locale [Render] uses for a request in
// locale (a language tag such as "es", "pt-BR" or "zh-Hant", or "") to a
// number of region (ISO 3166-1 alpha-2, such as "NP", or "").
//
// It tries, in order: the locale itself, matched without regard to case and
// with "_" read as "-" ("pt_pt" finds "pt-PT"); Chinese in traditional
// characters for "zh-Hant", "zh-TW", "zh-HK" and "zh-MO"; an alias ("no" and
// "nn" are served by "nb", "fil" by "tl", "iw" by "he", "in" by "id"); the
// locale's base language ("pt-BR" finds "pt", "es-419" finds "es"); the main
// language of region (see below); and finally English ("en").
//
// The region's language is the one most people there read their text
// messages in: Nepali for NP, Portuguese for BR, German for DE, French for
// FR, Japanese for JP, Chinese for CN and traditional Chinese for TW, HK and
// MO. Where text messages are mostly in English even though another language
// is more spoken, as in India, Pakistan, Kenya, Nigeria and the Philippines,
// it is English.
func ResolveLocale(locale, region string) string {
	if l, ok := builtinFor(canonicalTag(locale)); ok {
		return l
	}
	if l, ok := regionLanguages[strings.ToUpper(region)]; ok {
		return l
	}
	return DefaultLocale
}

// builtinFor finds the built-in locale for a canonical tag, without falling
// back to the region or to English.
func builtinFor(tag string) (string, bool) {
	if tag == "" {
		return "", false
	}
	if _, ok := builtin[tag]; ok {
		return tag, true
	}
	lang, script, region := splitTag(tag)
	if lang == "zh" && (script == "Hant" || script == "" && zhHantRegions[region]) {
		return "zh-Hant", true
	}
	if lang == "pt" && script == "" && region != "" && region != "BR" {
		// Portugal's spelling is the norm everywhere but in Brazil.
		return "pt-PT", true
	}
	if l, ok := aliases[tag]; ok {
		return l, true
	}
	if script != "" {
		if l, ok := aliases[lang+"-"+script]; ok {
			return l, true
		}
	}
	if l, ok := aliases[lang]; ok {
		return l, true
	}
	if _, ok := builtin[lang]; ok {
		return lang, true
	}
	return "", false
}

// requestedLocale is the locale a request is in, for looking up a service's
// per-locale overrides: the request's own locale, or when it has none, the
// language of the number's region. It is "" when neither is known.
func requestedLocale(locale, region string) string {
	if tag := canonicalTag(locale); tag != "" {
		return tag
	}
	return regionLanguages[strings.ToUpper(region)]
}

// ValidLocale reports whether s is a well-formed language tag of the kind a
// request may name: a language of 2–3 letters, then optionally a script of 4
// letters, a region of 2 letters or 3 digits and variants of 5–8 letters or
// digits (or 4 starting with a digit), joined by "-" or "_"; at most 35
// bytes in all. It checks the form only ("xx-YY" passes): an unknown but
// well-formed locale resolves like any other (see [ResolveLocale]). The
// empty string is not a locale; a request without one is for the caller to
// handle.
func ValidLocale(s string) bool {
	if s == "" || len(s) > 35 {
		return false
	}
	parts := strings.FieldsFunc(s, isTagSep)
	if len(parts) != strings.Count(s, "-")+strings.Count(s, "_")+1 {
		return false // empty subtag: leading, trailing or doubled separator
	}
	if !isAlpha(parts[0]) || len(parts[0]) < 2 || len(parts[0]) > 3 {
		return false
	}
	i := 1
	if i < len(parts) && len(parts[i]) == 4 && isAlpha(parts[i]) {
		i++ // script
	}
	if i < len(parts) && (len(parts[i]) == 2 && isAlpha(parts[i]) || len(parts[i]) == 3 && isDigits(parts[i])) {
		i++ // region
	}
	for ; i < len(parts); i++ {
		p := parts[i]
		if !isAlnum(p) || !(len(p) >= 5 && len(p) <= 8 || len(p) == 4 && p[0] >= '0' && p[0] <= '9') {
			return false
		}
	}
	return true
}

// canonicalTag returns tag in the case BCP 47 recommends ("pt-BR",
// "zh-Hant", "es-419"), with "_" read as "-", or "" if tag is not a
// well-formed language tag.
func canonicalTag(tag string) string {
	if !ValidLocale(tag) {
		return ""
	}
	parts := strings.FieldsFunc(tag, isTagSep)
	for i, p := range parts {
		switch {
		case i == 0:
			parts[i] = strings.ToLower(p)
		case len(p) == 4 && isAlpha(p):
			parts[i] = strings.ToUpper(p[:1]) + strings.ToLower(p[1:])
		case len(p) == 2:
			parts[i] = strings.ToUpper(p)
		default:
			parts[i] = strings.ToLower(p)
		}
	}
	return strings.Join(parts, "-")
}

// splitTag returns the language, script and region of a canonical tag.
func splitTag(tag string) (lang, script, region string) {
	parts := strings.Split(tag, "-")
	lang, parts = parts[0], parts[1:]
	if len(parts) > 0 && len(parts[0]) == 4 && isAlpha(parts[0]) {
		script, parts = parts[0], parts[1:]
	}
	if len(parts) > 0 && (len(parts[0]) == 2 || len(parts[0]) == 3 && isDigits(parts[0])) {
		region = parts[0]
	}
	return lang, script, region
}

// baseLanguage returns the language subtag of a canonical tag.
func baseLanguage(tag string) string {
	lang, _, _ := strings.Cut(tag, "-")
	return lang
}

func isTagSep(r rune) bool { return r == '-' || r == '_' }

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z') {
			return false
		}
	}
	return s != ""
}
