package phone

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

func TestParse(t *testing.T) {
	t.Parallel()
	npMobile := Number{E164: "+9779812345678", Region: "NP", CountryCode: 977, National: "9812345678", Type: TypeMobile}
	usNumber := Number{E164: "+14155552671", Region: "US", CountryCode: 1, National: "4155552671", Type: TypeFixedLineOrMobile}
	tests := []struct {
		name   string
		raw    string
		region string
		want   Number
	}{
		// Nepal, in every way people write it.
		{"NP international with dashes", "+977 981-234-5678", "", npMobile},
		{"NP international compact", "+9779812345678", "", npMobile},
		{"NP plus in parentheses", "(+977) 981-2345678", "", npMobile},
		{"NP 00 prefix without default region", "00977 9812345678", "", npMobile},
		{"NP 00 prefix with NP default", "00977 9812345678", "NP", npMobile},
		{"NP 00 prefix with US default", "00977 9812345678", "US", npMobile},
		{"NP US international prefix 011", "011 977 9812345678", "US", npMobile},
		{"NP national", "9812345678", "NP", npMobile},
		{"NP national lower-case region", "9812345678", "np", npMobile},
		{"NP national with country code but no plus", "9779812345678", "NP", npMobile},
		{"NP Devanagari digits", "९८१२३४५६७८", "NP", npMobile},
		{"NP Devanagari digits with plus", "+९७७ ९८१२३४५६७८", "", npMobile},
		{"NP fixed line Kathmandu", "01-4567890", "NP", Number{"+97714567890", "NP", 977, "14567890", TypeFixedLine}},
		{"NP international number ignores default region", "+9779812345678", "US", npMobile},

		// North America: one plan for mobile and fixed lines.
		{"US national parentheses", "(415) 555-2671", "US", usNumber},
		{"US national dots", "415.555.2671", "US", usNumber},
		{"US with trunk 1", "1 415 555 2671", "US", usNumber},
		{"US international", "+1 (415) 555-2671", "", usNumber},
		{"US tel URI", "tel:+1-415-555-2671", "", usNumber},
		{"US tel URI upper case", "TEL:+1-415-555-2671", "NP", usNumber},
		{"US surrounding spaces and tab", " \t+1 415 555 2671 \n", "", usNumber},
		{"US fullwidth", "＋１ ４１５ ５５５ ２６７１", "", usNumber},
		{"US non-breaking space and en dash", "+1\u00a0415\u2013555\u20132671", "", usNumber},
		{"CA from US default", "(506) 234-5678", "US", Number{"+15062345678", "CA", 1, "5062345678", TypeFixedLineOrMobile}},
		{"US toll free", "+1 800 234 5678", "", Number{"+18002345678", "US", 1, "8002345678", TypeTollFree}},
		{"US premium rate", "+1 900 234 5678", "", Number{"+19002345678", "US", 1, "9002345678", TypePremiumRate}},

		// India.
		{"IN mobile international", "+91 81234 56789", "", Number{"+918123456789", "IN", 91, "8123456789", TypeMobile}},
		{"IN mobile national with trunk 0", "081234 56789", "IN", Number{"+918123456789", "IN", 91, "8123456789", TypeMobile}},
		{"IN toll free", "1800 12 3456", "IN", Number{"+911800123456", "IN", 91, "1800123456", TypeTollFree}},

		// Europe.
		{"GB mobile national", "07400 123456", "GB", Number{"+447400123456", "GB", 44, "7400123456", TypeMobile}},
		{"GB mobile international", "+44 7400 123456", "", Number{"+447400123456", "GB", 44, "7400123456", TypeMobile}},
		{"GB trunk 0 in parentheses", "+44 (0) 121 234 5678", "", Number{"+441212345678", "GB", 44, "1212345678", TypeFixedLine}},
		{"GB VoIP", "056 1234 5678", "GB", Number{"+445612345678", "GB", 44, "5612345678", TypeVoIP}},
		{"GB premium rate", "0901 234 5678", "GB", Number{"+449012345678", "GB", 44, "9012345678", TypePremiumRate}},
		{"GB toll free", "0800 123 4567", "GB", Number{"+448001234567", "GB", 44, "8001234567", TypeTollFree}},
		{"DE mobile national", "01512 3456789", "DE", Number{"+4915123456789", "DE", 49, "15123456789", TypeMobile}},
		{"DE fixed line slash", "030/123456", "DE", Number{"+4930123456", "DE", 49, "30123456", TypeFixedLine}},
		{"FR mobile national", "06 12 34 56 78", "FR", Number{"+33612345678", "FR", 33, "612345678", TypeMobile}},
		{"FR mobile dots", "06.12.34.56.78", "FR", Number{"+33612345678", "FR", 33, "612345678", TypeMobile}},
		{"FR mobile 0033", "0033 6 12 34 56 78", "", Number{"+33612345678", "FR", 33, "612345678", TypeMobile}},
		{"IT fixed line keeps leading zero", "+39 02 1234 5678", "", Number{"+390212345678", "IT", 39, "0212345678", TypeFixedLine}},
		{"IT mobile", "312 345 6789", "IT", Number{"+393123456789", "IT", 39, "3123456789", TypeMobile}},
		{"ES mobile", "612 34 56 78", "ES", Number{"+34612345678", "ES", 34, "612345678", TypeMobile}},
		{"RU mobile with trunk 8", "8 (912) 345-67-89", "RU", Number{"+79123456789", "RU", 7, "9123456789", TypeMobile}},

		// Americas, Africa, Asia-Pacific.
		{"BR mobile national", "(11) 96123-4567", "BR", Number{"+5511961234567", "BR", 55, "11961234567", TypeMobile}},
		{"BR mobile international", "+55 11 96123-4567", "", Number{"+5511961234567", "BR", 55, "11961234567", TypeMobile}},
		{"MX mobile", "+52 222 123 4567", "", Number{"+522221234567", "MX", 52, "2221234567", TypeFixedLineOrMobile}},
		{"NG mobile national", "0802 123 4567", "NG", Number{"+2348021234567", "NG", 234, "8021234567", TypeMobile}},
		{"NG mobile international", "+234 802 123 4567", "", Number{"+2348021234567", "NG", 234, "8021234567", TypeMobile}},
		{"KE mobile national", "0712 123456", "KE", Number{"+254712123456", "KE", 254, "712123456", TypeMobile}},
		{"KE mobile international", "+254 712 123456", "", Number{"+254712123456", "KE", 254, "712123456", TypeMobile}},
		{"ZA mobile", "071 123 4567", "ZA", Number{"+27711234567", "ZA", 27, "711234567", TypeMobile}},
		{"AU mobile national", "0412 345 678", "AU", Number{"+61412345678", "AU", 61, "412345678", TypeMobile}},
		{"AU fixed line", "(02) 1234 5678", "AU", Number{"+61212345678", "AU", 61, "212345678", TypeFixedLine}},
		{"JP mobile national", "090-1234-5678", "JP", Number{"+819012345678", "JP", 81, "9012345678", TypeMobile}},
		{"JP VoIP", "050-1234-5678", "JP", Number{"+815012345678", "JP", 81, "5012345678", TypeVoIP}},
		{"JP toll free", "0120-123-456", "JP", Number{"+81120123456", "JP", 81, "120123456", TypeTollFree}},
		{"CN mobile", "+86 131 2345 6789", "", Number{"+8613123456789", "CN", 86, "13123456789", TypeMobile}},
		{"AE mobile", "050 123 4567", "AE", Number{"+971501234567", "AE", 971, "501234567", TypeMobile}},
		{"AE mobile Arabic-Indic digits", "٠٥٠ ١٢٣ ٤٥٦٧", "AE", Number{"+971501234567", "AE", 971, "501234567", TypeMobile}},
		{"SG mobile", "8123 4567", "SG", Number{"+6581234567", "SG", 65, "81234567", TypeMobile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.raw, tt.region)
			if err != nil {
				t.Fatalf("Parse(%q, %q): %v", tt.raw, tt.region, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q, %q)\n got %+v\nwant %+v", tt.raw, tt.region, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		raw    string
		region string
		want   error // the specific explanation
	}{
		{"empty", "", "NP", errEmpty},
		{"blank", "  \t ", "NP", errEmpty},
		{"only separators", "()-.", "NP", errEmpty},
		{"only plus", "+", "", errEmpty},
		{"only tel", "tel:", "", errEmpty},
		{"too long input", "+977 " + strings.Repeat("9", 60), "", errTooLongInput},
		{"65 bytes of spaces and a valid number", strings.Repeat(" ", 51) + "+9779812345678", "", errTooLongInput},
		{"letters", "+1 800 FLOWERS", "", errCharacters},
		{"extension", "+1 415 555 2671 ext 12", "", errCharacters},
		{"tel URI with parameters", "tel:+1-415-555-2671;ext=12", "", errCharacters},
		{"tel not at start", "+1 tel:4155552671", "", errCharacters},
		{"star", "*123#", "NP", errCharacters},
		{"hash", "+9779812345678#", "", errCharacters},
		{"comma", "+977,9812345678", "", errCharacters},
		{"letter O for zero", "O7400 123456", "GB", errCharacters},
		{"invalid UTF-8", "+977\xff9812345678", "", errCharacters},
		{"control character", "+977\x009812345678", "", errCharacters},
		{"plus in the middle", "977+9812345678", "NP", errPlus},
		{"two pluses", "++9779812345678", "", errPlus},
		{"plus after parenthesised digits", "(977)+9812345678", "NP", errPlus},
		{"national without default region", "9812345678", "", errNeedsRegion},
		{"national with unknown default region", "9812345678", "XX", errBadDefault},
		{"national with three-letter default region", "9812345678", "NPL", errBadDefault},
		{"unknown calling code", "+999 1234 5678", "", errCountryCode},
		{"zero calling code", "+0 123 456 789", "", errCountryCode},
		{"too short", "1234", "NP", errTooShort},
		{"emergency number", "911", "US", errTooShort},
		{"too long for NP", "+977 98123456789012", "", errTooLong},
		{"NP prefix not in use", "+977 1234567890", "", errNotValid},
		{"US area code 555", "+1 555 555 0123", "", errNotValid},
		{"US 00 with nothing valid", "00 1234", "US", errTooShort},
		{"international network", "+800 1234 5678", "", errNonGeo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, err := Parse(tt.raw, tt.region)
			if err == nil {
				t.Fatalf("Parse(%q, %q) = %+v, want an error", tt.raw, tt.region, n)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q, %q) error %v does not wrap ErrInvalid", tt.raw, tt.region, err)
			}
			if err != tt.want {
				t.Errorf("Parse(%q, %q) error\n got %q\nwant %q", tt.raw, tt.region, err, tt.want)
			}
			if n != (Number{}) {
				t.Errorf("Parse(%q, %q) returned %+v with its error, want the zero Number", tt.raw, tt.region, n)
			}
		})
	}
}

// TestErrorMessages checks that every explanation is a client-safe sentence.
func TestErrorMessages(t *testing.T) {
	t.Parallel()
	for _, err := range []error{errEmpty, errTooLongInput, errCharacters, errPlus, errNeedsRegion,
		errBadDefault, errCountryCode, errTooShort, errTooLong, errNotValid, errNonGeo, errNotE164, errNoNational} {
		msg := err.Error()
		if msg == "" || !unicode.IsUpper([]rune(msg)[0]) || !strings.HasSuffix(msg, ".") {
			t.Errorf("message %q is not a sentence", msg)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%q does not wrap ErrInvalid", msg)
		}
	}
	if !strings.Contains(errNeedsRegion.Error(), "PHONEVERIFY_DEFAULT_REGION") {
		t.Errorf("the missing-region message %q does not name PHONEVERIFY_DEFAULT_REGION", errNeedsRegion)
	}
}

func TestParseNeverEchoesInput(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"<script>alert(1)</script>", "+1 800 FLOWERS", "98123", "+977 98123456789012", "+999 1234 5678"} {
		_, err := Parse(raw, "NP")
		if err == nil {
			t.Fatalf("Parse(%q) succeeded", raw)
		}
		for _, part := range strings.Fields(raw) {
			if len(part) >= 3 && strings.Contains(err.Error(), part) {
				t.Errorf("Parse(%q) error %q repeats the input", raw, err)
			}
		}
	}
}

// TestParseExampleNumbers parses libphonenumber's example number of every
// type in every region: each must parse, keep its region and type, survive
// a round trip through E.164, and read back from its national format.
func TestParseExampleNumbers(t *testing.T) {
	t.Parallel()
	regions := make([]string, 0, len(phonenumbers.GetSupportedRegions()))
	for r := range phonenumbers.GetSupportedRegions() {
		regions = append(regions, r)
	}
	slices.Sort(regions)
	checked := 0
	for _, region := range regions {
		for lib, typ := range types {
			if lib == phonenumbers.FIXED_LINE_OR_MOBILE || lib == phonenumbers.UNKNOWN {
				continue // no examples of their own
			}
			ex := phonenumbers.GetExampleNumberForType(region, lib)
			if ex == nil || !phonenumbers.IsValidNumber(ex) {
				continue
			}
			if typ == TypeMobile || typ == TypeFixedLine {
				// Where both plans overlap, the example is of either.
				if phonenumbers.GetNumberType(ex) == phonenumbers.FIXED_LINE_OR_MOBILE {
					typ = TypeFixedLineOrMobile
				}
			}
			e164 := phonenumbers.Format(ex, phonenumbers.E164)
			n, err := Parse(e164, "")
			if err != nil {
				t.Errorf("%s %s: Parse(%q): %v", region, typ, e164, err)
				continue
			}
			if n.E164 != e164 || n.Type != typ || n.Region != phonenumbers.GetRegionCodeForNumber(ex) {
				t.Errorf("%s %s: Parse(%q) = %+v", region, typ, e164, n)
			}
			national, err := NationalFormat(e164)
			if err != nil {
				t.Errorf("%s: NationalFormat(%q): %v", region, e164, err)
				continue
			}
			back, err := Parse(national, n.Region)
			if err != nil || back != n {
				t.Errorf("%s: Parse(NationalFormat(%q) = %q, %q) = %+v, %v; want %+v", region, e164, national, n.Region, back, err, n)
			}
			checked++
		}
	}
	if checked < 500 {
		t.Errorf("checked only %d example numbers", checked)
	}
}

func TestCanReceiveSMS(t *testing.T) {
	t.Parallel()
	want := map[Type]bool{
		TypeMobile:            true,
		TypeFixedLineOrMobile: true,
		TypeVoIP:              true,
		TypePersonalNumber:    true,
		TypeFixedLine:         false,
		TypeTollFree:          false,
		TypePremiumRate:       false,
		TypeSharedCost:        false,
		TypePager:             false,
		TypeUAN:               false,
		TypeVoicemail:         false,
		TypeUnknown:           false,
		Type(""):              false,
		Type("satellite"):     false,
	}
	for typ, w := range want {
		if got := (Number{Type: typ}).CanReceiveSMS(); got != w {
			t.Errorf("Number{Type: %q}.CanReceiveSMS() = %v, want %v", typ, got, w)
		}
	}
	for _, typ := range types {
		if _, ok := want[typ]; !ok {
			t.Errorf("type %q has no expectation here", typ)
		}
	}
}

func TestCanReceiveSMSParsed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		want      bool
	}{
		{"NP mobile", "+9779812345678", true},
		{"US number", "+14155552671", true},
		{"GB mobile", "+447400123456", true},
		{"GB fixed line", "+441212345678", false},
		{"GB premium", "+449012345678", false},
		{"US toll free", "+18002345678", false},
		{"DE fixed line", "+4930123456", false},
	}
	for _, tt := range tests {
		n, err := Parse(tt.raw, "")
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := n.CanReceiveSMS(); got != tt.want {
			t.Errorf("%s: %s (%s) CanReceiveSMS() = %v, want %v", tt.name, tt.raw, n.Type, got, tt.want)
		}
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"NP mobile", "+9779812345678", "+97798*****78"},
		{"US", "+14155552671", "+141*****71"},
		{"GB", "+447400123456", "+4474*****56"},
		{"IT leading zero", "+390212345678", "+3902*****78"},
		{"DE long", "+4915123456789", "+4915*****89"},
		{"SG eight national digits", "+6581234567", "+6581*****67"},
		{"seven national digits keep one each end", "+2901234567", "+2901*****7"},
		{"four national digits keep one each end", "+2901234", "+2901*****4"},
		{"three national digits keep none", "+290123", "+290*****"},
		{"one national digit", "+2901", "+290*****"},
		{"calling code only", "+977", "+*****"},
		{"unknown calling code", "+99912345678", "+*****"},
		{"empty", "", ""},
		{"plus only", "+", "*****"},
		{"no plus", "9779812345678", "*****"},
		{"formatted", "+977 981-234-5678", "*****"},
		{"letters", "+97798abc45678", "*****"},
		{"too long", "+9779812345678901234", "*****"},
		{"multibyte", "+९७७९८१२३४५६७८", "*****"},
		{"garbage", "<script>", "*****"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Mask(tt.in); got != tt.want {
				t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestMaskRevealsLittle checks for every length that at most four national
// digits, and at most half of them, show.
func TestMaskRevealsLittle(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 14; n++ {
		e164 := "+1" + strings.Repeat("7", n)
		masked := Mask(e164)
		shown := strings.Count(masked, "7")
		if shown > 4 || shown > n/2 {
			t.Errorf("Mask(%q) = %q shows %d of %d national digits", e164, masked, shown, n)
		}
		if !strings.Contains(masked, "*****") {
			t.Errorf("Mask(%q) = %q has no stars", e164, masked)
		}
	}
}

func TestNationalFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"NP mobile for Sparrow", "+9779812345678", "9812345678"},
		{"NP fixed line with trunk 0", "+97714567890", "014567890"},
		{"US", "+14155552671", "4155552671"},
		{"GB mobile with trunk 0", "+447400123456", "07400123456"},
		{"IN mobile with trunk 0", "+918123456789", "08123456789"},
		{"DE mobile", "+4915123456789", "015123456789"},
		{"FR mobile", "+33612345678", "0612345678"},
		{"IT fixed line", "+390212345678", "0212345678"},
		{"JP mobile", "+819012345678", "09012345678"},
		{"KE mobile", "+254712123456", "0712123456"},
		{"RU mobile with trunk 8", "+79123456789", "89123456789"},
		{"CN mobile", "+8613123456789", "13123456789"},
		{"AR fixed line", "+541123456789", "01123456789"},
		// libphonenumber: "011 15-2345-6789"; the Go port alone gives "09 15-2345-6789".
		{"AR mobile Buenos Aires", "+5491123456789", "0111523456789"},
		{"AR mobile Córdoba", "+5493514123456", "0351154123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NationalFormat(tt.in)
			if err != nil {
				t.Fatalf("NationalFormat(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NationalFormat(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNationalFormatErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "+", "9812345678", "+977 981-234-5678", "+9771234567890", "+99912345678", "+97798123456789012"} {
		got, err := NationalFormat(in)
		if err == nil {
			t.Errorf("NationalFormat(%q) = %q, want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("NationalFormat(%q) error %v does not wrap ErrInvalid", in, err)
		}
	}
}

func TestValidRegion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want bool
	}{
		{"NP", true}, {"np", true}, {"Np", true}, {"US", true}, {"GB", true}, {"IN", true},
		{"BR", true}, {"XK", true},
		{"", false}, {"N", false}, {"NPL", false}, {"UK", false}, {"XX", false}, {"ZZ", false},
		{"001", false}, {" NP", false}, {"N\x00", false},
	}
	for _, tt := range tests {
		if got := ValidRegion(tt.code); got != tt.want {
			t.Errorf("ValidRegion(%q) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

func TestDigitTable(t *testing.T) {
	t.Parallel()
	for _, z := range digitZeros {
		for d := rune(0); d < 10; d++ {
			if r := z + d; !unicode.Is(unicode.Nd, r) {
				t.Errorf("U+%04X is not a decimal digit", r)
			}
			if got, ok := digit(z + d); !ok || got != byte('0'+d) {
				t.Errorf("digit(U+%04X) = %q, %v; want %q", z+d, got, ok, '0'+d)
			}
		}
	}
	if _, ok := digit('a'); ok {
		t.Error("digit('a') is a digit")
	}
}

func FuzzParse(f *testing.F) {
	seeds := []struct{ raw, region string }{
		{"+977 981-234-5678", ""},
		{"00977 9812345678", ""},
		{"(415) 555-2671", "US"},
		{"9812345678", "NP"},
		{"tel:+1-415-555-2671", ""},
		{"+44 (0) 121 234 5678", ""},
		{"०९८१२३४५६७८", "NP"},
		{"+800 1234 5678", ""},
		{"++", "us"},
		{"tel:;phone-context=+1", "US"},
		{"\xff", "GB"},
		{"0", "XX"},
	}
	for _, s := range seeds {
		f.Add(s.raw, s.region)
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		n, err := Parse(raw, region)
		masked := Mask(n.E164)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q, %q) error %v does not wrap ErrInvalid", raw, region, err)
			}
			return
		}
		if !strings.HasPrefix(n.E164, "+") || !isE164Shape(n.E164) {
			t.Fatalf("Parse(%q, %q).E164 = %q is not E.164", raw, region, n.E164)
		}
		if !ValidRegion(n.Region) || !strings.HasSuffix(n.E164, n.National) {
			t.Fatalf("Parse(%q, %q) = %+v is inconsistent", raw, region, n)
		}
		again, err := Parse(n.E164, "")
		if err != nil || again != n {
			t.Fatalf("Parse(%q) = %+v, %v; want %+v", n.E164, again, err, n)
		}
		if strings.Count(masked, "*") != 5 {
			t.Fatalf("Mask(%q) = %q", n.E164, masked)
		}
		if _, err := NationalFormat(n.E164); err != nil {
			t.Fatalf("NationalFormat(%q): %v", n.E164, err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	inputs := []struct{ raw, region string }{
		{"+977 981-234-5678", ""},
		{"9812345678", "NP"},
		{"(415) 555-2671", "US"},
		{"07400 123456", "GB"},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in := inputs[i%len(inputs)]
		if _, err := Parse(in.raw, in.region); err != nil {
			b.Fatal(err)
		}
	}
}
