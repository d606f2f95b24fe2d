package smpp

import (
	"errors"
	"fmt"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
)

// Message sizes. GSM 7-bit text travels unpacked, one septet per octet, and
// the SMSC packs it: 160 septets fit one SMS, and 153 fit beside the
// 6-octet concatenation header (7 septets once packed). UCS-2 text has 140
// octets, 134 beside the header.
const (
	gsmSingle  = 160
	gsmPart    = 153
	ucs2Single = 140
	ucs2Part   = 134
	maxParts   = 255
)

// part is the short_message of one submit_sm.
type part struct {
	data []byte
	enc  data.Encoding
	udh  pdu.UDH
}

// split encodes text and, when it is too long for one submit_sm, cuts it
// into parts that each carry a concatenation UDH (IEI 0x00: reference ref,
// part count, part number). Cuts never separate a GSM escape from the
// character it introduces or the halves of a UTF-16 surrogate pair.
func split(text string, ref byte) ([]part, error) {
	enc, single, per := data.GSM7BIT, gsmSingle, gsmPart
	if len(data.ValidateGSM7String(text)) > 0 {
		enc, single, per = data.UCS2, ucs2Single, ucs2Part
	}
	b, err := enc.Encode(text)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the text: %w", err)
	}
	if len(b) <= single {
		return []part{{data: b, enc: enc}}, nil
	}
	var chunks [][]byte
	for len(b) > 0 {
		n := min(per, len(b))
		if n < len(b) {
			n = cut(b, n, enc == data.UCS2)
		}
		chunks = append(chunks, b[:n])
		b = b[n:]
	}
	if len(chunks) > maxParts {
		return nil, errors.New("message too long for a concatenated SMS")
	}
	parts := make([]part, len(chunks))
	for i, c := range chunks {
		parts[i] = part{data: c, enc: enc, udh: pdu.UDH{pdu.NewIEConcatMessage(byte(len(chunks)), byte(i+1), ref)}}
	}
	return parts, nil
}

// cut moves a cut before b[n] back if it would split a character.
func cut(b []byte, n int, ucs2 bool) int {
	if ucs2 {
		if unit := uint16(b[n-2])<<8 | uint16(b[n-1]); unit >= 0xD800 && unit <= 0xDBFF {
			return n - 2 // a high surrogate: keep it with its low half
		}
		return n
	}
	if b[n-1] == 0x1B { // the escape of an extension-table character
		return n - 1
	}
	return n
}
