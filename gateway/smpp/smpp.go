// Package smpp sends verification texts to an SMSC over SMPP v3.4, for
// operators with a direct carrier or aggregator bind.
//
// The Sender binds as a transmitter (bind_transmitter with system_id and
// password), sends one submit_sm per message part and waits for each
// submit_sm_resp, keeps the bind alive with enquire_link, and binds again
// on the next Send after the connection drops. PDUs are encoded and decoded
// with the pdu and data packages of github.com/linxGnu/gosmpp; the session
// itself is managed here rather than by gosmpp.Session because a sender
// needs each submit_sm_resp matched to its request and returned to the
// caller, dials and binds that honour the caller's context, and a rebind
// that happens when a message is waiting rather than in a background loop.
//
// Protocol followed: SMPP Protocol Specification v3.4 (SMPP Developers
// Forum, 1999): §4.1 bind_transmitter, §4.4 submit_sm (esm_class UDHI 0x40,
// data_coding 0x00 default alphabet / 0x08 UCS-2, sm_length ≤ 254), §4.11
// enquire_link, §5.1.3 command_status values; 3GPP TS 23.040 §9.2.3.24.1 for
// the concatenation information element (IEI 0x00, 8-bit reference).
package smpp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/gwenv"
	"github.com/phoneverify/phoneverify/gateway/internal/gw"
)

// Name is the gateway name reported in results and errors.
const Name = "smpp"

// Environment variables read by [ConfigFromEnv]. The password may also be
// given as EnvPassword+"_FILE".
const (
	EnvAddr       = "PHONEVERIFY_GATEWAY_SMPP_ADDR"
	EnvSystemID   = "PHONEVERIFY_GATEWAY_SMPP_SYSTEM_ID"
	EnvPassword   = "PHONEVERIFY_GATEWAY_SMPP_PASSWORD"
	EnvSourceAddr = "PHONEVERIFY_GATEWAY_SMPP_SOURCE_ADDR"
)

// Defaults for the Config durations left zero.
const (
	DefaultEnquireLink     = 30 * time.Second
	DefaultResponseTimeout = 10 * time.Second
	DefaultConnectTimeout  = 10 * time.Second
)

// Config is what the gateway needs to bind to an SMSC.
type Config struct {
	// Addr is the SMSC's host:port.
	Addr string
	// SystemID and Password identify the ESME in bind_transmitter.
	SystemID string
	Password string
	// SystemType is sent in the bind when the SMSC asks for one.
	SystemType string
	// SourceAddr is the sender: "+" and digits is sent as an international
	// number (TON 1, NPI 1), plain digits with TON and NPI unknown-ISDN
	// (0, 1), and anything else as an alphanumeric sender id (TON 5, NPI 0).
	SourceAddr string
	// EnquireLink is the keep-alive interval; DefaultEnquireLink if zero.
	EnquireLink time.Duration
	// ResponseTimeout bounds the wait for any response PDU (and a write);
	// DefaultResponseTimeout if zero. An SMSC that misses it is taken as
	// gone and the connection is closed.
	ResponseTimeout time.Duration
	// ConnectTimeout bounds dialing and binding; DefaultConnectTimeout if
	// zero.
	ConnectTimeout time.Duration
}

// ConfigFromEnv reads the EnvXxx variables. The gateway is enabled when the
// address, system id, password and source address are all set; setting only
// some is an error naming the missing ones. The returned Config is validated.
func ConfigFromEnv(getenv func(string) string) (cfg Config, enabled bool, err error) {
	password, err := gwenv.Secret(getenv, EnvPassword)
	if err != nil {
		return Config{}, false, fmt.Errorf("smpp: %w", err)
	}
	cfg = Config{Addr: getenv(EnvAddr), SystemID: getenv(EnvSystemID), Password: password, SourceAddr: getenv(EnvSourceAddr)}
	enabled, err = gwenv.Check([]gwenv.Var{
		{Name: EnvAddr, Value: cfg.Addr},
		{Name: EnvSystemID, Value: cfg.SystemID},
		{Name: EnvPassword, Value: cfg.Password, Secret: true},
		{Name: EnvSourceAddr, Value: cfg.SourceAddr},
	}, nil)
	if err != nil {
		return Config{}, false, fmt.Errorf("smpp: %w", err)
	}
	if !enabled {
		return Config{}, false, nil
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, false, err
	}
	return cfg, true, nil
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		return errors.New("smpp: address must be host:port")
	}
	switch {
	case c.SystemID == "":
		return errors.New("smpp: system id is required")
	case len(c.SystemID) > 15:
		return errors.New("smpp: system id must be at most 15 characters")
	case len(c.SystemType) > 12:
		return errors.New("smpp: system type must be at most 12 characters")
	case c.SourceAddr == "":
		return errors.New("smpp: source address is required")
	case c.EnquireLink < 0 || c.ResponseTimeout < 0 || c.ConnectTimeout < 0:
		return errors.New("smpp: durations must not be negative")
	}
	if _, _, addr := sourceAddress(c.SourceAddr); len(addr) > 20 || (isAlpha(c.SourceAddr) && len(addr) > 11) {
		return errors.New("smpp: source address must be at most 20 digits or 11 characters")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.EnquireLink == 0 {
		c.EnquireLink = DefaultEnquireLink
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = DefaultResponseTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	return c
}

func isAlpha(s string) bool {
	d := strings.TrimPrefix(s, "+")
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return true
		}
	}
	return d == ""
}

// sourceAddress returns the TON, NPI and address of the source_addr field.
func sourceAddress(s string) (ton, npi byte, addr string) {
	switch {
	case isAlpha(s):
		return data.GSM_TON_ALPHANUMERIC, data.GSM_NPI_UNKNOWN, s
	case strings.HasPrefix(s, "+"):
		return data.GSM_TON_INTERNATIONAL, data.GSM_NPI_E164, s[1:]
	}
	return data.GSM_TON_UNKNOWN, data.GSM_NPI_E164, s
}

// ErrClosed is wrapped by the error Send returns after Close.
var ErrClosed = errors.New("smpp: sender closed")

// Sender submits messages over one SMPP transmitter bind, opened on first
// use and reopened after it drops. It is safe for concurrent use; messages
// share the bind, and their submit_sm are matched to responses by sequence
// number. Call Close to unbind.
type Sender struct {
	cfg  Config
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// lock guards sess and closed; it is a channel so that waiting for it
	// respects the caller's context.
	lock   chan struct{}
	sess   *session
	closed bool
	ref    atomic.Uint32
	// onDisconnect, when set (by tests), is called once per lost bind.
	onDisconnect func(error)
}

var _ phoneverify.Sender = (*Sender)(nil)

// New returns a Sender for cfg. It does not connect; the first Send (or
// Connect) dials and binds.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var d net.Dialer
	return &Sender{cfg: cfg.withDefaults(), dial: d.DialContext, lock: make(chan struct{}, 1)}, nil
}

// Name returns "smpp".
func (s *Sender) Name() string { return Name }

// Connect binds now if no bind is open, so that a service can fail fast or
// report readiness. Send connects by itself when needed.
func (s *Sender) Connect(ctx context.Context) error {
	_, _, err := s.session(ctx)
	return err
}

// Close unbinds (waiting up to the response timeout for unbind_resp) and
// closes the connection. Send fails with ErrClosed afterwards.
func (s *Sender) Close() error {
	s.lock <- struct{}{}
	defer func() { <-s.lock }()
	s.closed = true
	if s.sess != nil {
		s.sess.unbind()
		s.sess = nil
	}
	return nil
}

// session returns the open bind, binding first if there is none. fresh
// tells whether the bind was made by this call.
func (s *Sender) session(ctx context.Context) (sess *session, fresh bool, err error) {
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, false, gw.TransportError(Name, ctx.Err())
	}
	defer func() { <-s.lock }()
	if s.closed {
		return nil, false, &phoneverify.DeliveryError{Gateway: Name, Reason: "sender closed", Err: ErrClosed}
	}
	if s.sess != nil {
		if !s.sess.dead() {
			return s.sess, false, nil
		}
		s.sess.wait()
		s.sess = nil
	}
	sess, err = dialSession(ctx, s.cfg, s.dial, s.onDisconnect)
	if err != nil {
		return nil, false, err
	}
	s.sess = sess
	return sess, true, nil
}

// Send submits m, split into concatenated parts when it does not fit one
// PDU. The result's ProviderID is the message_id the SMSC gave the first
// part. The destination is m.To's digits with TON international and NPI
// ISDN; the text goes in the GSM 7-bit default alphabet (data_coding 0,
// one septet per octet) when it can and in UCS-2 (data_coding 8) otherwise.
// SMPP defines data_coding 0 as the SMSC's default alphabet, which SMSCs
// almost always take to be GSM 03.38; one that takes it for Latin-1 would
// garble "@", "_" and accented letters (digits and ASCII letters are the
// same in both). No delivery receipt is requested: a transmitter bind
// cannot receive one.
//
// It returns a *phoneverify.DeliveryError whose Code is the command_status
// name: permanent for statuses about the destination, source or message
// (ESME_RINVDSTADR, ESME_RINVSRCADR, ESME_RINVDSTTON, ESME_RINVMSGLEN, …)
// and for a bind refused with ESME_RINVPASWD or ESME_RINVSYSID; temporary
// for ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR and other statuses, for
// timeouts, and for connections that fail or drop (the next Send binds
// again). A connection found dead when the first part is written is
// replaced once, since the SMSC cannot have received that part.
func (s *Sender) Send(ctx context.Context, m *phoneverify.Message) (*phoneverify.SendResult, error) {
	to, err := gw.CheckMessage(Name, m)
	if err != nil {
		return nil, err
	}
	parts, err := split(m.Body, byte(s.ref.Add(1)))
	if err != nil {
		return nil, &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Reason: err.Error()}
	}
	for attempt := 0; ; attempt++ {
		sess, fresh, err := s.session(ctx)
		if err != nil {
			return nil, err
		}
		id, err := s.submit(ctx, sess, to, parts)
		var werr *writeError
		if errors.As(err, &werr) && werr.first && !fresh && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &phoneverify.SendResult{Gateway: Name, ProviderID: id}, nil
	}
}

func (s *Sender) submit(ctx context.Context, sess *session, to string, parts []part) (string, error) {
	sourceTON, sourceNPI, source := sourceAddress(s.cfg.SourceAddr)
	firstID := ""
	for i, p := range parts {
		sm := pdu.NewSubmitSM().(*pdu.SubmitSM)
		var err error
		if sm.SourceAddr, err = pdu.NewAddressWithTonNpiAddr(sourceTON, sourceNPI, source); err != nil {
			return "", &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Reason: "invalid source address", Err: err}
		}
		if sm.DestAddr, err = pdu.NewAddressWithTonNpiAddr(data.GSM_TON_INTERNATIONAL, data.GSM_NPI_E164, to); err != nil {
			return "", &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Reason: "invalid destination"}
		}
		if err := sm.Message.SetMessageDataWithEncoding(p.data, p.enc); err != nil {
			return "", &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Reason: "message part too long", Err: err}
		}
		if p.udh != nil {
			sm.Message.SetUDH(p.udh)
			sm.EsmClass |= data.SM_UDH_GSM
		}
		sm.RegisteredDelivery = data.SM_SMSC_RECEIPT_NOT_REQUESTED

		resp, err := sess.roundTrip(ctx, sm)
		if err != nil {
			var werr *writeError
			if errors.As(err, &werr) {
				werr.first = i == 0
			}
			return "", err
		}
		status := resp.GetHeader().CommandStatus
		if status != data.ESME_ROK {
			if status == data.ESME_RINVBNDSTS {
				// The SMSC no longer considers us bound: start afresh.
				sess.fail(errors.New("smpp: SMSC reports incorrect bind status"))
			}
			return "", statusError(status)
		}
		if r, ok := resp.(*pdu.SubmitSMResp); ok && i == 0 {
			firstID = r.MessageID
		}
	}
	return firstID, nil
}

// statusError maps a command_status to a delivery error.
func statusError(status data.CommandStatusType) *phoneverify.DeliveryError {
	return &phoneverify.DeliveryError{
		Gateway:   Name,
		Permanent: permanent(status),
		Code:      status.String(),
		Reason:    status.Desc(),
	}
}

// permanent tells whether a command_status means resubmitting the same
// message cannot succeed.
func permanent(status data.CommandStatusType) bool {
	switch status {
	case data.ESME_RINVMSGLEN, // message length is invalid
		data.ESME_RINVCMDID,       // invalid command id
		data.ESME_RINVPRTFLG,      // invalid priority flag
		data.ESME_RINVREGDLVFLG,   // invalid registered delivery flag
		data.ESME_RINVSRCADR,      // invalid source address
		data.ESME_RINVDSTADR,      // invalid destination address
		data.ESME_RINVPASWD,       // invalid password
		data.ESME_RINVSYSID,       // invalid system id
		data.ESME_RINVSERTYP,      // invalid service type
		data.ESME_RINVESMCLASS,    // invalid esm_class
		data.ESME_RINVSRCTON,      // invalid source TON
		data.ESME_RINVSRCNPI,      // invalid source NPI
		data.ESME_RINVDSTTON,      // invalid destination TON
		data.ESME_RINVDSTNPI,      // invalid destination NPI
		data.ESME_RINVSYSTYP,      // invalid system type
		data.ESME_RPROVNOTALLWD,   // provisioning not allowed
		data.ESME_RINVDFTMSGID,    // predefined message invalid
		data.ESME_RX_P_APPN,       // receiver permanent application error
		data.ESME_RX_R_APPN,       // receiver rejects the message
		data.ESME_RINVPARAM,       // invalid parameter
		data.ESME_RINVOPTPARAMVAL, // invalid optional parameter value
		data.ESME_ROPTPARNOTALLWD: // optional parameter not allowed
		return true
	}
	// ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR, ESME_RX_T_APPN,
	// ESME_RSUBMITFAIL, ESME_RUNKNOWNERR and vendor-specific values.
	return false
}
