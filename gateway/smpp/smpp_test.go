package smpp

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/data"

	"github.com/phoneverify/phoneverify"
)

func testMessage(body string) *phoneverify.Message {
	return &phoneverify.Message{VerificationID: "ver_1", To: "+9779812345678", Body: body, Code: "482913"}
}

// newTestSender returns a Sender bound to smsc's address, whose lost binds
// are reported on the returned channel.
func newTestSender(t *testing.T, smsc *testSMSC, mutate func(*Config)) (*Sender, chan error) {
	t.Helper()
	cfg := Config{Addr: smsc.addr(), SystemID: "verify", Password: "s3cret", SourceAddr: "PhoneVerify",
		ResponseTimeout: 2 * time.Second, ConnectTimeout: 2 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lost := make(chan error, 10)
	s.onDisconnect = func(err error) { lost <- err }
	t.Cleanup(func() { _ = s.Close() })
	return s, lost
}

func awaitLost(t *testing.T, lost chan error) {
	t.Helper()
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the sender did not notice the dropped connection")
	}
}

func TestSendSingleGSM(t *testing.T) {
	t.Parallel()
	smsc := newTestSMSC(t)
	s, _ := newTestSender(t, smsc, nil)
	res, err := s.Send(context.Background(), testMessage("Your code is 482913. Don't share it {ok}"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Gateway != "smpp" || res.ProviderID != "smsc-1" {
		t.Fatalf("result = %+v", res)
	}
	binds, submits := smsc.counts()
	if binds != 1 || len(submits) != 1 {
		t.Fatalf("binds = %d, submits = %d", binds, len(submits))
	}
	sm := submits[0]
	if sm.SourceAddr.Ton() != data.GSM_TON_ALPHANUMERIC || sm.SourceAddr.Npi() != data.GSM_NPI_UNKNOWN || sm.SourceAddr.Address() != "PhoneVerify" {
		t.Errorf("source = %v", sm.SourceAddr)
	}
	if sm.DestAddr.Ton() != data.GSM_TON_INTERNATIONAL || sm.DestAddr.Npi() != data.GSM_NPI_ISDN || sm.DestAddr.Address() != "9779812345678" {
		t.Errorf("destination = %v", sm.DestAddr)
	}
	if sm.RegisteredDelivery != 0 || sm.ServiceType != "" || sm.EsmClass != 0 {
		t.Errorf("registered_delivery = %d, service_type = %q, esm_class = %#x", sm.RegisteredDelivery, sm.ServiceType, sm.EsmClass)
	}
	text, coding, _, _, _, concat := decoded(t, sm)
	if text != "Your code is 482913. Don't share it {ok}" || coding != data.GSM7BITCoding || concat {
		t.Errorf("text %q coding %#x concat %v", text, coding, concat)
	}
	if b, _ := sm.Message.GetMessageData(); len(b) != 42 { // 38 + two escaped braces
		t.Errorf("short_message is %d octets, want 42 unpacked septets", len(b))
	}
}

func TestSendUCS2(t *testing.T) {
	t.Parallel()
	smsc := newTestSMSC(t)
	s, _ := newTestSender(t, smsc, func(c *Config) { c.SourceAddr = "+9779800000000" })
	body := "तपाईंको कोड 482913 हो"
	if _, err := s.Send(context.Background(), testMessage(body)); err != nil {
		t.Fatal(err)
	}
	_, submits := smsc.counts()
	sm := submits[0]
	text, coding, _, _, _, concat := decoded(t, sm)
	if text != body || coding != data.UCS2Coding || concat {
		t.Fatalf("text %q coding %#x concat %v", text, coding, concat)
	}
	if sm.SourceAddr.Ton() != data.GSM_TON_INTERNATIONAL || sm.SourceAddr.Address() != "9779800000000" {
		t.Errorf("source = %v", sm.SourceAddr)
	}
}

func TestSendConcatenated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		wantCoding byte
		wantParts  int
	}{
		{name: "GSM 161 septets", body: strings.Repeat("a", 161), wantCoding: data.GSM7BITCoding, wantParts: 2},
		{name: "GSM with escapes at the cut", body: strings.Repeat("a", 152) + "€€" + strings.Repeat("b", 200), wantCoding: data.GSM7BITCoding, wantParts: 3},
		{name: "UCS-2", body: strings.Repeat("क", 150), wantCoding: data.UCS2Coding, wantParts: 3},
		{name: "UCS-2 surrogate pair at the cut", body: strings.Repeat("क", 66) + "😀" + strings.Repeat("ख", 10), wantCoding: data.UCS2Coding, wantParts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			smsc := newTestSMSC(t)
			s, _ := newTestSender(t, smsc, nil)
			res, err := s.Send(context.Background(), testMessage(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if res.ProviderID != "smsc-1" {
				t.Errorf("ProviderID = %q, want the first part's id", res.ProviderID)
			}
			_, submits := smsc.counts()
			if len(submits) != tt.wantParts {
				t.Fatalf("parts = %d, want %d", len(submits), tt.wantParts)
			}
			var whole strings.Builder
			var firstRef byte
			for i, sm := range submits {
				text, coding, total, seq, ref, concat := decoded(t, sm)
				if !concat || int(total) != tt.wantParts || int(seq) != i+1 || coding != tt.wantCoding {
					t.Fatalf("part %d: concat %v total %d seq %d coding %#x", i, concat, total, seq, coding)
				}
				if i == 0 {
					firstRef = ref
				} else if ref != firstRef {
					t.Fatalf("part %d has reference %d, want %d", i, ref, firstRef)
				}
				b, _ := sm.Message.GetMessageData()
				limit := gsmPart
				if coding == data.UCS2Coding {
					limit = ucs2Part
				}
				if len(b) > limit {
					t.Fatalf("part %d carries %d octets, limit %d", i, len(b), limit)
				}
				whole.WriteString(text)
			}
			if whole.String() != tt.body {
				t.Fatalf("reassembled %q, want %q", whole.String(), tt.body)
			}
		})
	}
}

func TestSendConcatenationReferenceChanges(t *testing.T) {
	t.Parallel()
	smsc := newTestSMSC(t)
	s, _ := newTestSender(t, smsc, nil)
	for i := 0; i < 2; i++ {
		if _, err := s.Send(context.Background(), testMessage(strings.Repeat("x", 200))); err != nil {
			t.Fatal(err)
		}
	}
	_, submits := smsc.counts()
	_, _, _, _, ref1, _ := decoded(t, submits[0])
	_, _, _, _, ref2, _ := decoded(t, submits[2])
	if ref1 == ref2 {
		t.Fatal("two long messages share a concatenation reference")
	}
}

func TestSendStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status        data.CommandStatusType
		wantPermanent bool
	}{
		{data.ESME_RINVDSTADR, true},
		{data.ESME_RINVSRCADR, true},
		{data.ESME_RINVDSTTON, true},
		{data.ESME_RX_R_APPN, true},
		{data.ESME_RTHROTTLED, false},
		{data.ESME_RMSGQFUL, false},
		{data.ESME_RSYSERR, false},
		{data.ESME_RSUBMITFAIL, false},
		{data.CommandStatusType(0x400), false}, // vendor-specific
	}
	for _, tt := range tests {
		t.Run(tt.status.String(), func(t *testing.T) {
			t.Parallel()
			smsc := newTestSMSC(t)
			smsc.set(func(c *testSMSC) { c.statuses = []data.CommandStatusType{tt.status} })
			s, _ := newTestSender(t, smsc, nil)
			m := testMessage("Your code is 482913")
			_, err := s.Send(context.Background(), m)
			var de *phoneverify.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want *DeliveryError", err)
			}
			if de.Permanent != tt.wantPermanent || de.Code != tt.status.String() {
				t.Fatalf("permanent = %v code = %q, want %v %q", de.Permanent, de.Code, tt.wantPermanent, tt.status.String())
			}
			if strings.Contains(err.Error(), m.Code) || strings.Contains(err.Error(), "9812345678") {
				t.Fatalf("error %q leaks the code or number", err)
			}
			// The bind survives a refused message.
			if _, err := s.Send(context.Background(), m); err != nil {
				t.Fatalf("next send: %v", err)
			}
			if binds, _ := smsc.counts(); binds != 1 {
				t.Fatalf("binds = %d, want 1", binds)
			}
		})
	}
}

func TestBindRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		pad      bool
		mutate   func(*Config)
		wantCode string
	}{
		{name: "wrong password", mutate: func(c *Config) { c.Password = "nope" }, wantCode: "ESME_RINVPASWD"},
		{name: "wrong system id", mutate: func(c *Config) { c.SystemID = "other" }, wantCode: "ESME_RINVSYSID"},
		{name: "padded error response", pad: true, mutate: func(c *Config) { c.Password = "nope" }, wantCode: "ESME_RINVPASWD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			smsc := newTestSMSC(t)
			smsc.set(func(c *testSMSC) { c.padErrors = tt.pad })
			s, _ := newTestSender(t, smsc, tt.mutate)
			_, err := s.Send(context.Background(), testMessage("Your code is 482913"))
			var de *phoneverify.DeliveryError
			if !errors.As(err, &de) || !de.Permanent || de.Code != tt.wantCode {
				t.Fatalf("err = %v, want permanent %s", err, tt.wantCode)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "nope") {
				t.Fatalf("error %q leaks the password", err)
			}
		})
	}
}

func TestReconnectAfterDrop(t *testing.T) {
	t.Parallel()
	smsc := newTestSMSC(t)
	s, lost := newTestSender(t, smsc, nil)
	if _, err := s.Send(context.Background(), testMessage("one")); err != nil {
		t.Fatal(err)
	}
	smsc.dropAll()
	awaitLost(t, lost)
	res, err := s.Send(context.Background(), testMessage("two"))
	if err != nil {
		t.Fatalf("send after the drop: %v", err)
	}
	if res.ProviderID != "smsc-2" {
		t.Fatalf("ProviderID = %q", res.ProviderID)
	}
	if binds, _ := smsc.counts(); binds != 2 {
		t.Fatalf("binds = %d, want 2", binds)
	}
}

func TestDropWhileWaitingForResponse(t *testing.T) {
	t.Parallel()
	smsc := newTestSMSC(t)
	smsc.set(func(c *testSMSC) { c.dropOnSubmit = true })
	s, _ := newTestSender(t, smsc, nil)
	_, err := s.Send(context.Background(), testMessage("Your code is 482913"))
	var de *phoneverify.DeliveryError
	if !errors.As(err, &de) || de.Permanent {
		t.Fatalf("err = %v, want a temporary error", err)
	}
	smsc.set(func(c *testSMSC) { c.dropOnSubmit = false })
	if _, err := s.Send(context.Background(), testMessage("Your code is 482913")); err != nil {
		t.Fatalf("send after the drop: %v", err)
	}
	if binds, submits := smsc.counts(); binds != 2 || len(submits) != 2 {
		t.Fatalf("binds = %d, submits = %d; want 2 and 2", binds, len(submits))
	}
}

func TestSendTimeoutKeepsBind(t *testing.T) {
	t.Parallel()
	smsc := newTestSMSC(t)
	smsc.set(func(c *testSMSC) { c.silent = true })
	s, _ := newTestSender(t, smsc, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.Send(ctx, testMessage("Your code is 482913"))
	var de *phoneverify.DeliveryError
	if !errors.As(err, &de) || de.Permanent || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a temporary timeout", err)
	}
	smsc.set(func(c *testSMSC) { c.silent = false })
	if _, err := s.Send(context.Background(), testMessage("again")); err != nil {
		t.Fatal(err)
	}
	if binds, _ := smsc.counts(); binds != 1 {
		t.Fatalf("binds = %d, want 1: a caller's timeout must not drop the bind", binds)
	}
}

func TestUnansweredSubmitDropsBind(t *testing.T) {
	t.Parallel()
	smsc := newTestSMSC(t)
	smsc.set(func(c *testSMSC) { c.silent = true })
	s, lost := newTestSender(t, smsc, func(c *Config) { c.ResponseTimeout = 100 * time.Millisecond })
	_, err := s.Send(context.Background(), testMessage("Your code is 482913"))
	if err == nil || phoneverify.IsPermanent(err) {
		t.Fatalf("err = %v, want a temporary error", err)
	}
	awaitLost(t, lost)
	smsc.set(func(c *testSMSC) { c.silent = false })
	if _, err := s.Send(context.Background(), testMessage("again")); err != nil {
		t.Fatal(err)
	}
	if binds, _ := smsc.counts(); binds != 2 {
		t.Fatalf("binds = %d, want 2", binds)
	}
}

func TestEnquireLink(t *testing.T) {
	t.Parallel()
	smsc := newTestSMSC(t)
	s, _ := newTestSender(t, smsc, func(c *Config) { c.EnquireLink = 20 * time.Millisecond })
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	smsc.await("enquire_link", 5*time.Second)
	smsc.await("enquire_link", 5*time.Second)
	// And the sender answers the SMSC's own probes.
	smsc.sendEnquireLink()
	smsc.await("enquire_link_resp", 5*time.Second)
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	s, err := New(Config{Addr: addr, SystemID: "verify", Password: "s3cret", SourceAddr: "PhoneVerify"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Send(context.Background(), testMessage("Your code is 482913"))
	var de *phoneverify.DeliveryError
	if !errors.As(err, &de) || de.Permanent || de.Reason != "connection error" {
		t.Fatalf("err = %v, want a temporary connection error", err)
	}
}

func TestBindTimeout(t *testing.T) {
	t.Parallel()
	// A listener that accepts but never answers the bind.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	defer func() {
		select {
		case c := <-accepted:
			_ = c.Close()
		default:
		}
	}()
	s, err := New(Config{Addr: ln.Addr().String(), SystemID: "verify", Password: "s3cret", SourceAddr: "PhoneVerify"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = s.Send(ctx, testMessage("Your code is 482913"))
	var de *phoneverify.DeliveryError
	if !errors.As(err, &de) || de.Permanent || de.Reason != "timeout" {
		t.Fatalf("err = %v, want a temporary timeout", err)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	smsc := newTestSMSC(t)
	s, _ := newTestSender(t, smsc, nil)
	if _, err := s.Send(context.Background(), testMessage("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	smsc.await("unbind", 5*time.Second)
	_, err := s.Send(context.Background(), testMessage("two"))
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	smsc := newTestSMSC(t)
	s, _ := newTestSender(t, smsc, nil)
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() {
			_, err := s.Send(context.Background(), testMessage("Your code is 482913"))
			errs <- err
		}()
	}
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if binds, submits := smsc.counts(); binds != 1 || len(submits) != 20 {
		t.Fatalf("binds = %d, submits = %d", binds, len(submits))
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		text      string
		wantParts int
		wantEnc   byte
	}{
		{name: "160 GSM fit one", text: strings.Repeat("a", 160), wantParts: 1, wantEnc: data.GSM7BITCoding},
		{name: "159 plus one escape do not", text: strings.Repeat("a", 159) + "€", wantParts: 2, wantEnc: data.GSM7BITCoding},
		{name: "306 GSM fit two", text: strings.Repeat("a", 306), wantParts: 2, wantEnc: data.GSM7BITCoding},
		{name: "70 UCS-2 fit one", text: strings.Repeat("क", 70), wantParts: 1, wantEnc: data.UCS2Coding},
		{name: "71 UCS-2 do not", text: strings.Repeat("क", 71), wantParts: 2, wantEnc: data.UCS2Coding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := split(tt.text, 7)
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != tt.wantParts || parts[0].enc.DataCoding() != tt.wantEnc {
				t.Fatalf("parts = %d coding %#x, want %d %#x", len(parts), parts[0].enc.DataCoding(), tt.wantParts, tt.wantEnc)
			}
			for _, p := range parts {
				if len(parts) > 1 && len(p.data) > max(gsmPart, ucs2Part) {
					t.Fatalf("part of %d octets", len(p.data))
				}
				if p.data[len(p.data)-1] == 0x1B && p.enc.DataCoding() == data.GSM7BITCoding {
					t.Fatal("part ends inside an escape sequence")
				}
			}
		})
	}
	if _, err := split(strings.Repeat("a", 153*255+1), 1); err == nil {
		t.Fatal("want an error for more than 255 parts")
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{EnvAddr: "smsc.example.net:2775", EnvSystemID: "verify", EnvPassword: "s3cret", EnvSourceAddr: "PhoneVerify"}
	without := func(k string) map[string]string {
		m := map[string]string{}
		for kk, v := range full {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	withFile := without(EnvPassword)
	withFile[EnvPassword+"_FILE"] = pwFile
	tests := []struct {
		name        string
		env         map[string]string
		wantEnabled bool
		wantErr     string
	}{
		{name: "nothing set", env: map[string]string{}},
		{name: "all set", env: full, wantEnabled: true},
		{name: "password from file", env: withFile, wantEnabled: true},
		{name: "missing password", env: without(EnvPassword), wantErr: EnvPassword + " (or " + EnvPassword + "_FILE) is not set"},
		{name: "missing source", env: without(EnvSourceAddr), wantErr: EnvSourceAddr + " is not set"},
		{name: "missing address", env: without(EnvAddr), wantErr: EnvAddr + " is not set"},
		{name: "address without port", env: func() map[string]string { m := without(EnvAddr); m[EnvAddr] = "smsc.example.net"; return m }(), wantErr: "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, enabled, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if enabled != tt.wantEnabled {
				t.Fatalf("enabled = %v", enabled)
			}
			want := Config{}
			if tt.wantEnabled {
				want = Config{Addr: "smsc.example.net:2775", SystemID: "verify", Password: "s3cret", SourceAddr: "PhoneVerify"}
			}
			if cfg != want {
				t.Fatalf("cfg = %+v, want %+v", cfg, want)
			}
		})
	}
}

func TestSourceAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		ton, npi byte
		addr     string
	}{
		{"PhoneVerify", data.GSM_TON_ALPHANUMERIC, data.GSM_NPI_UNKNOWN, "PhoneVerify"},
		{"+9779800000000", data.GSM_TON_INTERNATIONAL, data.GSM_NPI_E164, "9779800000000"},
		{"31337", data.GSM_TON_UNKNOWN, data.GSM_NPI_E164, "31337"},
	}
	for _, tt := range tests {
		ton, npi, addr := sourceAddress(tt.in)
		if ton != tt.ton || npi != tt.npi || addr != tt.addr {
			t.Errorf("sourceAddress(%q) = %d %d %q", tt.in, ton, npi, addr)
		}
	}
}
