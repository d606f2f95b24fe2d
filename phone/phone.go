// Package phone parses, normalises and classifies phone numbers.
//
// It wraps libphonenumber's metadata (github.com/nyaruka/phonenumbers) behind
// a small API: [Parse] turns what a person typed into a [Number] in E.164
// with its region and line type, [Number.CanReceiveSMS] says whether a code
// can be texted to it, [Mask] hides a number for logs and [NationalFormat]
// gives the digits a domestic gateway expects.
//
// The package holds no mutable state of its own; its only package-level
// values are read-only tables.
package phone

import (
	"errors"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// MaxInputLength is the longest input, in bytes, that [Parse] accepts. No
// real phone number, however formatted, comes close to it.
const MaxInputLength = 64

// Type is the kind of line a number belongs to, as libphonenumber's metadata
// classifies it.
type Type string

// Line types. The values are stable: they appear in API answers and in
// configuration that allows or refuses number types.
const (
	TypeMobile            Type = "mobile"
	TypeFixedLine         Type = "fixed_line"
	TypeFixedLineOrMobile Type = "fixed_line_or_mobile"
	TypeTollFree          Type = "toll_free"
	TypePremiumRate       Type = "premium_rate"
	TypeSharedCost        Type = "shared_cost"
	TypeVoIP              Type = "voip"
	TypePersonalNumber    Type = "personal_number"
	TypePager             Type = "pager"
	TypeUAN               Type = "uan"
	TypeVoicemail         Type = "voicemail"
	TypeUnknown           Type = "unknown"
)

// types maps libphonenumber's classification to ours.
var types = map[phonenumbers.PhoneNumberType]Type{
	phonenumbers.MOBILE:               TypeMobile,
	phonenumbers.FIXED_LINE:           TypeFixedLine,
	phonenumbers.FIXED_LINE_OR_MOBILE: TypeFixedLineOrMobile,
	phonenumbers.TOLL_FREE:            TypeTollFree,
	phonenumbers.PREMIUM_RATE:         TypePremiumRate,
	phonenumbers.SHARED_COST:          TypeSharedCost,
	phonenumbers.VOIP:                 TypeVoIP,
	phonenumbers.PERSONAL_NUMBER:      TypePersonalNumber,
	phonenumbers.PAGER:                TypePager,
	phonenumbers.UAN:                  TypeUAN,
	phonenumbers.VOICEMAIL:            TypeVoicemail,
	phonenumbers.UNKNOWN:              TypeUnknown,
}

// Number is a valid phone number in normal form.
type Number struct {
	// E164 is the number in E.164, e.g. "+9779812345678".
	E164 string
	// Region is the ISO 3166-1 alpha-2 code of the number's country, e.g. "NP".
	Region string
	// CountryCode is the country calling code, e.g. 977.
	CountryCode int
	// National is the national significant number, digits only, without any
	// trunk prefix, e.g. "9812345678".
	National string
	// Type is the kind of line, e.g. TypeMobile.
	Type Type
}

// CanReceiveSMS reports whether a text message can be delivered to n's type
// of line. It is true for mobile, fixed_line_or_mobile (libphonenumber cannot
// tell the two apart in the US, Canada and a few other countries, where both
// share one numbering plan), voip and personal_number lines, which are
// commonly SMS-capable. It is false for fixed_line, toll_free, premium_rate,
// shared_cost, uan, voicemail, pager and unknown. The answer is about the type
// of line only; whether a given operator delivers is for the gateway to find out.
func (n Number) CanReceiveSMS() bool {
	switch n.Type {
	case TypeMobile, TypeFixedLineOrMobile, TypeVoIP, TypePersonalNumber:
		return true
	}
	return false
}

// ErrInvalid is wrapped by every error [Parse] and [NationalFormat] return.
// The text of such an error is a full sentence that is safe to show to an API
// client: it explains what is wrong and never repeats the input.
var ErrInvalid = errors.New("invalid phone number")

// invalidError is an ErrInvalid with a client-safe explanation.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalid(msg string) error { return &invalidError{msg: msg} }

// Client-safe explanations, one per way a number can be refused.
var (
	errEmpty        = invalid("The phone number is empty.")
	errTooLongInput = invalid("The phone number is too long.")
	errCharacters   = invalid("The phone number may contain only digits, spaces, dots, dashes, slashes, parentheses and a leading +.")
	errPlus         = invalid("A + may only come before the first digit of the phone number.")
	errNeedsRegion  = invalid("The phone number has no country code: write it in international format, starting with + and the country code, or set PHONEVERIFY_DEFAULT_REGION on the server so that a number without a country code is read as a national number of that country.")
	errBadDefault   = invalid("The phone number has no country code, and the server's PHONEVERIFY_DEFAULT_REGION is not a known region code: write the number in international format, starting with + and the country code.")
	errCountryCode  = invalid("The country code of the phone number does not exist.")
	errTooShort     = invalid("The phone number is too short for its country.")
	errTooLong      = invalid("The phone number is too long for its country.")
	errNotValid     = invalid("The phone number is not a valid number for its country.")
	errNonGeo       = invalid("The phone number belongs to an international network rather than a country; such numbers are not supported.")
	errNotE164      = invalid("The phone number must be in E.164 format, such as +14155552671.")
	errNoNational   = invalid("The phone number cannot be written in national format.")
)

// Parse reads a phone number written in any common format and returns it in
// normal form.
//
// It accepts international numbers ("+977 981-234-5678", "(+977) 9812345678",
// "00977 9812345678", "tel:+1-415-555-2671") and, when defaultRegion names a country (an ISO
// 3166-1 alpha-2 code, in any case), national numbers of that country
// ("9812345678" with "NP", "(415) 555-2671" with "US"), including their trunk
// prefix ("07400 123456" with "GB"). Spaces, dots, dashes, slashes and
// parentheses are ignored, and digits of other scripts (Devanagari,
// Arabic-Indic, Bengali, Thai, fullwidth and others) are read as the ASCII
// digits they stand for. A leading "00" is read as "+" when the number cannot
// be read otherwise, so "00977…" works whatever the default region.
//
// Parse refuses input that is empty or longer than [MaxInputLength] bytes,
// that contains letters or symbols (other than a leading "tel:"), a national
// number when defaultRegion is empty or unknown, numbers of international
// networks (+800, +882 and the like, which belong to no country), and every
// number that libphonenumber does not consider valid. Every error wraps
// [ErrInvalid] and reads as a sentence fit for an API client.
func Parse(raw, defaultRegion string) (Number, error) {
	if len(raw) > MaxInputLength {
		return Number{}, errTooLongInput
	}
	clean, err := clean(raw)
	if err != nil {
		return Number{}, err
	}
	region := strings.ToUpper(strings.TrimSpace(defaultRegion))

	var (
		num    *phonenumbers.PhoneNumber
		numReg string // the number's region
	)
	switch {
	case clean[0] == '+':
		num, numReg, err = parseValid(clean, "")
	case region == "":
		// With no country to read it in, "00" can only be an international
		// prefix: it is the ITU's recommended one and most of the world's.
		if !strings.HasPrefix(clean, "00") {
			return Number{}, errNeedsRegion
		}
		num, numReg, err = parseValid("+"+clean[2:], "")
	case !ValidRegion(region):
		if !strings.HasPrefix(clean, "00") {
			return Number{}, errBadDefault
		}
		num, numReg, err = parseValid("+"+clean[2:], "")
	default:
		num, numReg, err = parseValid(clean, region)
		if err != nil && strings.HasPrefix(clean, "00") {
			// Not a national number of region (whose international prefix
			// may be another, like the US's 011): try "00" as "+".
			if n, r, err2 := parseValid("+"+clean[2:], ""); err2 == nil {
				num, numReg, err = n, r, nil
			}
		}
	}
	if err != nil {
		return Number{}, err
	}
	return toNumber(num, numReg)
}

// parseValid parses an already cleaned number, checks that it is valid and
// returns it with its region ("001" for international networks).
func parseValid(s, defaultRegion string) (*phonenumbers.PhoneNumber, string, error) {
	num, err := phonenumbers.Parse(s, defaultRegion)
	if err != nil {
		switch {
		case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
			return nil, "", errCountryCode
		case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD):
			return nil, "", errTooShort
		case errors.Is(err, phonenumbers.ErrNumTooLong):
			return nil, "", errTooLong
		}
		return nil, "", errNotValid
	}
	// IsValidNumber, without working out the region twice: it is the
	// costliest step for calling codes shared by many regions, like +1.
	region := phonenumbers.GetRegionCodeForNumber(num)
	if phonenumbers.IsValidNumberForRegion(num, region) {
		return num, region, nil
	}
	switch phonenumbers.IsPossibleNumberWithReason(num) {
	case phonenumbers.INVALID_COUNTRY_CODE:
		return nil, "", errCountryCode
	case phonenumbers.TOO_SHORT:
		return nil, "", errTooShort
	case phonenumbers.TOO_LONG:
		return nil, "", errTooLong
	}
	return nil, "", errNotValid
}

// toNumber builds a Number from a valid libphonenumber number and its region.
func toNumber(num *phonenumbers.PhoneNumber, region string) (Number, error) {
	if len(region) != 2 {
		// "001": a non-geographic calling code such as +800 or +882.
		return Number{}, errNonGeo
	}
	typ, ok := types[phonenumbers.GetNumberType(num)]
	if !ok {
		typ = TypeUnknown
	}
	return Number{
		E164:        phonenumbers.Format(num, phonenumbers.E164),
		Region:      region,
		CountryCode: int(num.GetCountryCode()),
		National:    phonenumbers.GetNationalSignificantNumber(num),
		Type:        typ,
	}, nil
}

// clean checks the characters of raw and returns its digits in ASCII, with a
// leading "+" if it had one. It never returns an empty string without an error.
func clean(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if len(s) >= 4 && strings.EqualFold(s[:4], "tel:") {
		s = strings.TrimSpace(s[4:])
	}
	if s == "" {
		return "", errEmpty
	}
	if !utf8.ValidString(s) {
		return "", errCharacters
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if d, ok := digit(r); ok {
			b.WriteByte(d)
			continue
		}
		switch {
		case r == '+' || r == '＋':
			// Only before the first digit, as in "+977…" or "(+977) …".
			if b.Len() != 0 {
				return "", errPlus
			}
			b.WriteByte('+')
		case isSeparator(r):
		default:
			return "", errCharacters
		}
	}
	out := b.String()
	if out == "" || out == "+" {
		return "", errEmpty
	}
	return out, nil
}

// isSeparator reports whether r is punctuation people put between digits.
func isSeparator(r rune) bool {
	switch r {
	case '.', '-', '(', ')', '/', '\u2212': // U+2212 MINUS SIGN
		return true
	}
	return unicode.IsSpace(r) || unicode.Is(unicode.Pd, r)
}

// digitZeros lists the zero of each run of decimal digits Parse reads, so
// that people may type numbers in the digits of their own script. Each entry
// starts a run of ten consecutive code points for 0–9.
var digitZeros = [...]rune{
	'0',
	0x0660, // Arabic-Indic
	0x06F0, // Extended Arabic-Indic (Persian, Urdu)
	0x07C0, // NKo
	0x0966, // Devanagari (Nepali, Hindi, Marathi)
	0x09E6, // Bengali
	0x0A66, // Gurmukhi
	0x0AE6, // Gujarati
	0x0B66, // Oriya
	0x0BE6, // Tamil
	0x0C66, // Telugu
	0x0CE6, // Kannada
	0x0D66, // Malayalam
	0x0E50, // Thai
	0x0ED0, // Lao
	0x0F20, // Tibetan
	0x1040, // Myanmar
	0x17E0, // Khmer
	0x1810, // Mongolian
	0xFF10, // Fullwidth
}

// digit returns the ASCII digit that r stands for.
func digit(r rune) (byte, bool) {
	for _, z := range digitZeros {
		if r >= z && r <= z+9 {
			return byte('0' + r - z), true
		}
	}
	return 0, false
}

// ValidRegion reports whether code is a region libphonenumber knows numbers
// for: an ISO 3166-1 alpha-2 code such as "NP" or "us" (case does not
// matter), or one of the few other two-letter codes it uses (such as "XK"
// for Kosovo and "AC" for Ascension Island).
func ValidRegion(code string) bool {
	if len(code) != 2 {
		return false
	}
	return phonenumbers.GetSupportedRegions()[strings.ToUpper(code)]
}

// NationalFormat returns the digits to dial for the valid E.164 number e164
// from within its own country, trunk prefix included where the country uses
// one: "+9779812345678" gives "9812345678", "+447400123456" gives
// "07400123456". Gateways that take national numbers (such as Sparrow SMS in
// Nepal) want this form. The result always reads back, as a national number
// of the same region, to the same number. The error wraps [ErrInvalid].
func NationalFormat(e164 string) (string, error) {
	if !isE164Shape(e164) {
		return "", errNotE164
	}
	num, region, err := parseValid(e164, "")
	if err != nil {
		return "", err
	}
	national := digitsOnly(phonenumbers.Format(num, phonenumbers.NATIONAL))
	if readsBack(national, region, num) {
		return national, nil
	}
	if national, ok := nationalByMetadata(num); ok && readsBack(national, region, num) {
		return national, nil
	}
	return "", errNoNational
}

// readsBack reports whether national, read as a number of region, is num.
func readsBack(national, region string, num *phonenumbers.PhoneNumber) bool {
	back, err := phonenumbers.Parse(national, region)
	return err == nil && back.GetCountryCode() == num.GetCountryCode() &&
		phonenumbers.GetNationalSignificantNumber(back) == phonenumbers.GetNationalSignificantNumber(num)
}

// firstGroup finds the first group reference of a number format.
var firstGroup = regexp.MustCompile(`\$(\d)`)

// nationalByMetadata formats num nationally the way libphonenumber does. It
// is needed because nyaruka/phonenumbers v1.8.1 pastes a format's national
// prefix rule ("0$1") in place of the format's first group without
// resolving the rule's "$1" to that group. That is wrong wherever the first
// group of the format is not $1, which today is Argentina's mobile numbers
// only: +5491123456789 comes out as "09 15-2345-6789" instead of
// "011 15-2345-6789".
func nationalByMetadata(num *phonenumbers.PhoneNumber) (string, bool) {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return "", false
	}
	region := phonenumbers.GetRegionCodeForCountryCode(int(num.GetCountryCode()))
	nsn := phonenumbers.GetNationalSignificantNumber(num)
	for _, m := range coll.GetMetadata() {
		if m.GetId() != region {
			continue
		}
		for _, f := range m.GetNumberFormat() {
			pattern, err := regexp.Compile(`^(?:` + f.GetPattern() + `)$`)
			if err != nil || !pattern.MatchString(nsn) {
				continue
			}
			if leading := f.GetLeadingDigitsPattern(); len(leading) > 0 {
				// libphonenumber tries the last, most detailed, pattern.
				re, err := regexp.Compile(`^(?:` + leading[len(leading)-1] + `)`)
				if err != nil || !re.MatchString(nsn) {
					continue
				}
			}
			format := f.GetFormat()
			if rule := f.GetNationalPrefixFormattingRule(); rule != "" {
				if loc := firstGroup.FindStringIndex(format); loc != nil {
					group := format[loc[0]:loc[1]]
					format = format[:loc[0]] + strings.Replace(rule, "$1", group, 1) + format[loc[1]:]
				}
			}
			// ${n} so that a digit after a group is not read as part of it.
			format = firstGroup.ReplaceAllString(format, "$${$1}")
			return digitsOnly(pattern.ReplaceAllString(nsn, format)), true
		}
		return "", false
	}
	return "", false
}

// digitsOnly returns the ASCII digits of s.
func digitsOnly(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isE164Shape reports whether s is "+" and 1 to 15 ASCII digits.
func isE164Shape(s string) bool {
	if len(s) < 2 || len(s) > 16 || s[0] != '+' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maskStars replaces the hidden middle of a masked number. Its length is
// fixed so that a masked number does not reveal how many digits it has.
const maskStars = "*****"

// Mask hides most of an E.164 number so that it can be logged:
// "+9779812345678" becomes "+97798*****78". It keeps the "+", the country
// calling code, the first two and the last two digits of the national
// number, and puts a fixed five stars between them whatever the length.
// It never shows more than half of the national number: below eight national
// digits it keeps one digit at each end, below four none. Input that is not
// E.164 ("+" and up to 15 digits) gives "*****", and an unknown calling code
// "+*****", so that nothing of a malformed value leaks into a log.
func Mask(e164 string) string {
	if !isE164Shape(e164) {
		if e164 == "" {
			return ""
		}
		return maskStars
	}
	digits := e164[1:]
	cc := callingCodeLen(digits)
	if cc == 0 {
		return "+" + maskStars
	}
	national := digits[cc:]
	keep := min(2, len(national)/4)
	return "+" + digits[:cc] + national[:keep] + maskStars + national[len(national)-keep:]
}

// callingCodeLen returns the length of the country calling code that digits
// starts with, or 0 if none. Calling codes are a prefix code (no code is the
// start of another), so the first match is the only one.
func callingCodeLen(digits string) int {
	codes := phonenumbers.GetSupportedCallingCodes()
	code := 0
	for i := 0; i < 3 && i < len(digits)-1; i++ {
		code = code*10 + int(digits[i]-'0')
		if codes[code] {
			return i + 1
		}
	}
	return 0
}
