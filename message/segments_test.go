package message

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSegments(t *testing.T) {
	t.Parallel()
	rep := strings.Repeat
	tests := []struct {
		name     string
		body     string
		encoding string
		count    int
	}{
		{"empty", "", EncodingGSM7, 0},
		{"one char", "a", EncodingGSM7, 1},
		{"default English message", "Your Example verification code is 123456", EncodingGSM7, 1},

		// GSM-7 single and multipart boundaries.
		{"GSM 160", rep("a", 160), EncodingGSM7, 1},
		{"GSM 161", rep("a", 161), EncodingGSM7, 2},
		{"GSM 306 is two parts of 153", rep("a", 306), EncodingGSM7, 2},
		{"GSM 307", rep("a", 307), EncodingGSM7, 3},
		{"GSM 459 is three parts", rep("a", 459), EncodingGSM7, 3},
		{"GSM 460", rep("a", 460), EncodingGSM7, 4},
		{"GSM basic accented letters count one", rep("é", 160), EncodingGSM7, 1},
		{"GSM all basic non-ASCII", "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", EncodingGSM7, 1},
		{"GSM newline and carriage return", "a\r\nb", EncodingGSM7, 1},

		// Extension characters cost two septets.
		{"extension 80 is 160 septets", rep("€", 80), EncodingGSM7, 1},
		{"extension 81 is 162 septets", rep("€", 81), EncodingGSM7, 2},
		{"159 basic and one extension", rep("a", 159) + "^", EncodingGSM7, 2},
		{"158 basic and one extension", rep("a", 158) + "{", EncodingGSM7, 1},
		{"every extension character", "\f^{}\\[~]|€", EncodingGSM7, 1},
		{"ten extensions and 140 basic are 160 septets", rep("a", 140) + "\f^{}\\[~]|€", EncodingGSM7, 1},
		{"ten extensions and 141 basic are 161 septets", rep("a", 141) + "\f^{}\\[~]|€", EncodingGSM7, 2},
		// An escape sequence never straddles two parts: 152 + 2 does not fit
		// 153, so the euro starts part two, which then overflows by one.
		{"extension at the part boundary", rep("a", 152) + "€" + rep("a", 152), EncodingGSM7, 3},
		{"extension just before the part boundary", rep("a", 151) + "€" + rep("a", 153), EncodingGSM7, 2},

		// Anything outside GSM-7 forces UCS-2.
		{"c cedilla", "ç", EncodingUCS2, 1},
		{"one non-GSM letter in long text", rep("a", 100) + "á", EncodingUCS2, 2},
		{"tab is not GSM", "a\tb", EncodingUCS2, 1},
		{"grave accent is not GSM", "`", EncodingUCS2, 1},
		{"Cyrillic", "Ваш код", EncodingUCS2, 1},
		{"invalid UTF-8", "abc\xff", EncodingUCS2, 1},

		// UCS-2 boundaries in UTF-16 code units.
		{"UCS-2 70", rep("ж", 70), EncodingUCS2, 1},
		{"UCS-2 71", rep("ж", 71), EncodingUCS2, 2},
		{"UCS-2 134 is two parts of 67", rep("ж", 134), EncodingUCS2, 2},
		{"UCS-2 135", rep("ж", 135), EncodingUCS2, 3},
		{"Devanagari 70", rep("क", 70), EncodingUCS2, 1},

		// Surrogate pairs count two units and never straddle parts.
		{"emoji is two units", "😀", EncodingUCS2, 1},
		{"35 emoji are 70 units", rep("😀", 35), EncodingUCS2, 1},
		{"36 emoji are 72 units", rep("😀", 36), EncodingUCS2, 2},
		{"68 BMP and an emoji are 70 units", rep("ж", 68) + "😀", EncodingUCS2, 1},
		{"69 BMP and an emoji are 71 units", rep("ж", 69) + "😀", EncodingUCS2, 2},
		{"surrogate pair at the part boundary", rep("ж", 66) + "😀" + rep("ж", 66), EncodingUCS2, 3},
		{"surrogate pair just before the part boundary", rep("ж", 65) + "😀" + rep("ж", 67), EncodingUCS2, 2},
		{"emoji in a GSM text", "Your code is 123456 👍", EncodingUCS2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enc, n := Segments(tt.body)
			if enc != tt.encoding || n != tt.count {
				t.Errorf("Segments(%d runes) = %s, %d; want %s, %d", utf8.RuneCountInString(tt.body), enc, n, tt.encoding, tt.count)
			}
		})
	}
}

func TestGSMTables(t *testing.T) {
	t.Parallel()
	if got := utf8.RuneCountInString(gsmBasic); got != 127 {
		t.Errorf("the GSM-7 basic set has %d characters, want 127 (128 less the escape)", got)
	}
	if got := utf8.RuneCountInString(gsmExtension); got != 10 {
		t.Errorf("the GSM-7 extension table has %d characters, want 10", got)
	}
	for _, r := range gsmBasic {
		if gsmSeptets(r) != 1 {
			t.Errorf("%q costs %d septets, want 1", r, gsmSeptets(r))
		}
	}
	for _, r := range gsmExtension {
		if gsmSeptets(r) != 2 {
			t.Errorf("%q costs %d septets, want 2", r, gsmSeptets(r))
		}
	}
	for _, r := range "ç`\tÀáâãêëíîïóôõúûýÿ\x1bœ–—“”‘’…" {
		if gsmSeptets(r) != 0 {
			t.Errorf("%q is counted as GSM-7", r)
		}
	}
}

func BenchmarkSegments(b *testing.B) {
	body := "Your Example verification code is 123456\nFA+9qCX9VSu\n@example.com #123456"
	for b.Loop() {
		Segments(body)
	}
}
