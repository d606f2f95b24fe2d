// Package gsm7 tells whether a text fits the GSM 03.38 (3GPP TS 23.038)
// default alphabet, which decides between a plain and a Unicode SMS.
package gsm7

import "strings"

// basic is the default alphabet; extension holds the characters sent as an
// escape (0x1B) plus one septet.
const (
	basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	extension = "\f^{}\\[~]|€"
)

// Septets returns how many septets s takes in the GSM 7-bit alphabet
// (extension characters count two) and whether every character of s has
// one. When ok is false the text must be sent as UCS-2.
func Septets(s string) (n int, ok bool) {
	for _, r := range s {
		switch {
		case strings.ContainsRune(basic, r):
			n++
		case strings.ContainsRune(extension, r):
			n += 2
		default:
			return 0, false
		}
	}
	return n, true
}

// Is reports whether s can be sent with the GSM 7-bit alphabet.
func Is(s string) bool {
	_, ok := Septets(s)
	return ok
}
