package message

import (
	"strings"
	"unicode/utf8"
)

// SMS encodings reported by [Segments].
const (
	// EncodingGSM7 is the GSM 03.38 default alphabet, 7 bits a character.
	EncodingGSM7 = "GSM-7"
	// EncodingUCS2 is UTF-16, 16 bits a code unit, needed for any character
	// outside the GSM-7 alphabet.
	EncodingUCS2 = "UCS-2"
)

// Capacities of an SMS, in septets (GSM-7) or UTF-16 code units (UCS-2). A
// message that does not fit one SMS is split into parts that each give up
// room to a user data header (UDH) saying how to join them back.
const (
	gsmSingle  = 160
	gsmPart    = 153
	ucs2Single = 70
	ucs2Part   = 67
)

// gsmBasic is the GSM 03.38 default alphabet (one septet each), less the
// escape code 0x1B. 'Ç' is the capital: there is no lower-case c cedilla.
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtension is the GSM 03.38 extension table: each is sent as the escape
// code and a second septet, so it costs two.
const gsmExtension = "\f^{}\\[~]|€"

// gsmSeptets returns how many septets r costs in GSM-7, or 0 if GSM-7 cannot
// carry it.
func gsmSeptets(r rune) int {
	if r < utf8.RuneSelf {
		return asciiSeptets[r]
	}
	switch {
	case strings.ContainsRune(gsmBasic, r):
		return 1
	case r == '€':
		return 2
	}
	return 0
}

// asciiSeptets is the cost of each ASCII character: 1, 2 or 0 (not in GSM-7).
var asciiSeptets = func() (t [utf8.RuneSelf]int) {
	for _, r := range gsmBasic {
		if r < utf8.RuneSelf {
			t[r] = 1
		}
	}
	for _, r := range gsmExtension {
		if r < utf8.RuneSelf {
			t[r] = 2
		}
	}
	return t
}()

// Segments returns the encoding an SMS gateway will use for body and the
// number of SMS it will be sent as.
//
// The encoding is [EncodingGSM7] when every character is in the GSM 03.38
// default alphabet or its extension table, and [EncodingUCS2] as soon as one
// is not (such as "ç", "á", "ő", Cyrillic, Devanagari or any emoji). In GSM-7
// a character costs one septet, or two for the extension characters
// ^ { } \ [ ~ ] | € and form feed; in UCS-2 a character costs one UTF-16
// code unit, or two for characters outside the Basic Multilingual Plane
// (surrogate pairs, such as emoji).
//
// One SMS holds 160 septets or 70 code units. Longer bodies are sent as
// parts of 153 septets or 67 code units, and a character is never split
// between parts: an extension character or a surrogate pair that does not
// fit the room left in a part starts the next one, as gateways do. An empty
// body is 0 segments. Invalid UTF-8 is counted as U+FFFD, which forces UCS-2.
func Segments(body string) (encoding string, count int) {
	if body == "" {
		return EncodingGSM7, 0
	}
	encoding, single, part := EncodingGSM7, gsmSingle, gsmPart
	total := 0
	for _, r := range body {
		n := gsmSeptets(r)
		if n == 0 {
			encoding, single, part = EncodingUCS2, ucs2Single, ucs2Part
			break
		}
		total += n
	}
	if encoding == EncodingUCS2 {
		total = 0
		for _, r := range body {
			total += utf16Units(r)
		}
	}
	if total <= single {
		return encoding, 1
	}
	// Fill parts one character at a time so that no character straddles two.
	count, used := 1, 0
	for _, r := range body {
		var n int
		if encoding == EncodingGSM7 {
			n = gsmSeptets(r)
		} else {
			n = utf16Units(r)
		}
		if used+n > part {
			count++
			used = 0
		}
		used += n
	}
	return encoding, count
}

// utf16Units returns how many UTF-16 code units r takes.
func utf16Units(r rune) int {
	if r >= 0x10000 && r <= utf8.MaxRune {
		return 2
	}
	return 1
}
