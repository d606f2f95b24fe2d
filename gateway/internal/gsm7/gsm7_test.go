package gsm7

import "testing"

func TestSeptets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		want   int
		wantOK bool
	}{
		{name: "ascii", in: "Your code is 123456", want: 19, wantOK: true},
		{name: "extension counts two", in: "€[]", want: 6, wantOK: true},
		{name: "greek capitals in basic table", in: "ΔΩ", want: 2, wantOK: true},
		{name: "devanagari", in: "कोड 1234", wantOK: false},
		{name: "emoji", in: "ok 👍", wantOK: false},
		{name: "lowercase c cedilla not in table", in: "ç", wantOK: false},
		{name: "empty", in: "", want: 0, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Septets(tt.in)
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Fatalf("Septets(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
