package smpp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/internal/gw"
)

// session is one bound connection: a reader goroutine that routes response
// PDUs to the requests waiting for them and answers the SMSC's own
// requests, and a keep-alive goroutine that sends enquire_link.
type session struct {
	cfg Config
	nc  net.Conn

	wmu sync.Mutex // serializes writes to nc

	mu      sync.Mutex // guards seq and pending
	seq     int32
	pending map[int32]chan pdu.PDU

	done     chan struct{} // closed when the session is over
	err      error         // why; written before done is closed
	failOnce sync.Once
	onFail   func(error)
	wg       sync.WaitGroup
}

// writeError is a failure to write a request: the SMSC did not get it.
type writeError struct {
	err   error
	first bool // set by submit when no part of the message was sent
}

// Error implements error.
func (e *writeError) Error() string { return "smpp: writing: " + e.err.Error() }

// Unwrap returns the cause.
func (e *writeError) Unwrap() error { return e.err }

// errUnbound is the cause when the SMSC ends the bind itself.
var errUnbound = errors.New("smpp: SMSC sent unbind")

func dialSession(ctx context.Context, cfg Config, dial func(context.Context, string, string) (net.Conn, error), onFail func(error)) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	nc, err := dial(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, gw.TransportError(Name, err)
	}
	deadline := time.Now().Add(cfg.ResponseTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = nc.SetDeadline(deadline)
	// Abort the bind's reads and writes if ctx is canceled first.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	br := bufio.NewReader(nc)
	err = bind(nc, br, cfg)
	if !stop() || err != nil {
		_ = nc.Close()
		if err == nil {
			err = ctx.Err()
		}
		var de *phoneverify.DeliveryError
		if errors.As(err, &de) {
			return nil, de
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, gw.TransportError(Name, fmt.Errorf("binding: %w", err))
	}
	_ = nc.SetDeadline(time.Time{})

	s := &session{cfg: cfg, nc: nc, seq: 1, pending: make(map[int32]chan pdu.PDU), done: make(chan struct{}), onFail: onFail}
	s.wg.Add(2)
	go s.readLoop(br)
	go s.keepAlive()
	return s, nil
}

// bind sends bind_transmitter and waits for its response, answering
// enquire_link meanwhile. The caller sets nc's deadline.
func bind(nc net.Conn, br *bufio.Reader, cfg Config) error {
	req := pdu.NewBindRequest(pdu.Transmitter)
	req.SystemID = cfg.SystemID
	req.Password = cfg.Password
	req.SystemType = cfg.SystemType
	req.SetSequenceNumber(1)
	if err := writePDU(nc, req); err != nil {
		return err
	}
	for {
		p, err := readPDU(br)
		if errors.Is(err, errSkipped) {
			continue
		}
		if err != nil {
			return err
		}
		switch p := p.(type) {
		case *pdu.BindResp:
			switch status := p.CommandStatus; status {
			case data.ESME_ROK:
				return nil
			case data.ESME_RINVPASWD, data.ESME_RINVSYSID:
				return &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Account: true, Code: status.String(),
					Reason: "bind refused: " + status.Desc()}
			default:
				return &phoneverify.DeliveryError{Gateway: Name, Code: status.String(),
					Reason: "bind refused: " + status.Desc()}
			}
		case *pdu.GenericNack:
			return &phoneverify.DeliveryError{Gateway: Name, Code: p.CommandStatus.String(),
				Reason: "bind refused: " + p.CommandStatus.Desc()}
		case *pdu.EnquireLink:
			if err := writePDU(nc, p.GetResponse()); err != nil {
				return err
			}
		}
	}
}

// errSkipped is returned by readPDU for a PDU it read whole but could not
// use: an unknown command or a malformed request. The stream stays in step.
var errSkipped = errors.New("smpp: PDU skipped")

// readPDU reads one PDU. A response whose body does not parse (some SMSCs
// pad error responses that the specification says have no body) is
// returned as a bare PDU of its type carrying the header's status and
// sequence number. Only I/O failures and impossible lengths are fatal.
func readPDU(r io.Reader) (pdu.PDU, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	h := pdu.ParseHeader(hdr)
	if h.CommandLength < 16 || h.CommandLength > data.MAX_PDU_LEN {
		return nil, fmt.Errorf("smpp: invalid command_length %d", h.CommandLength)
	}
	raw := make([]byte, h.CommandLength)
	copy(raw, hdr[:])
	if _, err := io.ReadFull(r, raw[16:]); err != nil {
		return nil, err
	}
	p, err := pdu.Parse(bytes.NewReader(raw))
	if err == nil {
		return p, nil
	}
	if b := bare(h); b != nil {
		return b, nil
	}
	return nil, errSkipped
}

// bare returns an empty response PDU with h's command, status and
// sequence number, or nil when h is not a response this package reads.
func bare(h pdu.Header) pdu.PDU {
	var p pdu.PDU
	switch h.CommandID {
	case data.BIND_TRANSMITTER_RESP:
		r := pdu.NewBindTransmitterResp().(*pdu.BindResp)
		r.CommandStatus = h.CommandStatus
		p = r
	case data.SUBMIT_SM_RESP:
		r := pdu.NewSubmitSMResp().(*pdu.SubmitSMResp)
		r.CommandStatus = h.CommandStatus
		p = r
	case data.GENERIC_NACK:
		r := pdu.NewGenericNack().(*pdu.GenericNack)
		r.CommandStatus = h.CommandStatus
		p = r
	case data.ENQUIRE_LINK_RESP:
		r := pdu.NewEnquireLinkResp().(*pdu.EnquireLinkResp)
		r.CommandStatus = h.CommandStatus
		p = r
	case data.UNBIND_RESP:
		r := pdu.NewUnbindResp().(*pdu.UnbindResp)
		r.CommandStatus = h.CommandStatus
		p = r
	default:
		return nil
	}
	p.SetSequenceNumber(h.SequenceNumber)
	return p
}

func writePDU(w net.Conn, p pdu.PDU) error {
	buf := pdu.NewBuffer(nil)
	p.Marshal(buf)
	_, err := w.Write(buf.Bytes())
	return err
}

// dead reports whether the session is over.
func (s *session) dead() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// wait returns when the session's goroutines have ended.
func (s *session) wait() { s.wg.Wait() }

// fail ends the session for err, closing the connection; requests waiting
// for responses get err.
func (s *session) fail(err error) {
	s.failOnce.Do(func() {
		s.err = err
		close(s.done)
		_ = s.nc.Close()
		if s.onFail != nil {
			s.onFail(err)
		}
	})
}

// unbind ends the session politely and waits for its goroutines.
func (s *session) unbind() {
	if !s.dead() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ResponseTimeout)
		_, _ = s.roundTrip(ctx, pdu.NewUnbind())
		cancel()
		s.fail(ErrClosed)
	}
	s.wait()
}

// write sends p, giving up at the earlier of ctx's deadline and the
// response timeout. A failed write ends the session.
func (s *session) write(ctx context.Context, p pdu.PDU) error {
	deadline := time.Now().Add(s.cfg.ResponseTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.dead() {
		return &writeError{err: s.err}
	}
	_ = s.nc.SetWriteDeadline(deadline)
	if err := writePDU(s.nc, p); err != nil {
		s.fail(fmt.Errorf("smpp: writing: %w", err))
		return &writeError{err: err}
	}
	return nil
}

// roundTrip sends request p and returns its response (which may carry an
// error command_status). It fails with a temporary *DeliveryError when the
// session ends, ctx ends, or the SMSC does not answer within the response
// timeout; the last also ends the session.
func (s *session) roundTrip(ctx context.Context, p pdu.PDU) (pdu.PDU, error) {
	ch := make(chan pdu.PDU, 1)
	s.mu.Lock()
	s.seq++
	if s.seq <= 0 { // sequence numbers run from 1 to 0x7FFFFFFF
		s.seq = 2
	}
	seq := s.seq
	s.pending[seq] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, seq)
		s.mu.Unlock()
	}()

	p.SetSequenceNumber(seq)
	if err := s.write(ctx, p); err != nil {
		return nil, &phoneverify.DeliveryError{Gateway: Name, Reason: "connection error", Err: err}
	}
	timer := time.NewTimer(s.cfg.ResponseTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r, nil
	case <-s.done:
		return nil, &phoneverify.DeliveryError{Gateway: Name, Reason: "connection lost", Err: s.err}
	case <-ctx.Done():
		return nil, gw.TransportError(Name, ctx.Err())
	case <-timer.C:
		err := errors.New("smpp: no response from SMSC")
		s.fail(err)
		return nil, &phoneverify.DeliveryError{Gateway: Name, Reason: "timeout", Err: err}
	}
}

// readLoop reads PDUs until the connection fails. Silence longer than an
// enquire_link interval plus a response timeout ends the session.
func (s *session) readLoop(br *bufio.Reader) {
	defer s.wg.Done()
	idle := s.cfg.EnquireLink + s.cfg.ResponseTimeout
	for {
		_ = s.nc.SetReadDeadline(time.Now().Add(idle))
		p, err := readPDU(br)
		if errors.Is(err, errSkipped) {
			continue
		}
		if err != nil {
			s.fail(fmt.Errorf("smpp: reading: %w", err))
			return
		}
		switch p := p.(type) {
		case *pdu.SubmitSMResp, *pdu.EnquireLinkResp, *pdu.UnbindResp, *pdu.GenericNack:
			s.mu.Lock()
			ch := s.pending[p.GetSequenceNumber()]
			s.mu.Unlock()
			if ch != nil {
				select {
				case ch <- p:
				default: // a duplicate response; the first one counts
				}
			}
		case *pdu.Unbind:
			_ = s.write(context.Background(), p.GetResponse())
			s.fail(errUnbound)
			return
		default:
			// enquire_link, and anything a transmitter should not get
			// (deliver_sm, alert_notification): answer so the SMSC does
			// not retry or drop us.
			if p.CanResponse() {
				if err := s.write(context.Background(), p.GetResponse()); err != nil {
					return
				}
			}
		}
	}
}

// keepAlive sends enquire_link every interval until the session ends.
func (s *session) keepAlive() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.EnquireLink)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ResponseTimeout)
			_, err := s.roundTrip(ctx, pdu.NewEnquireLink())
			cancel()
			if err != nil {
				s.fail(fmt.Errorf("smpp: enquire_link: %w", err))
				return
			}
		}
	}
}
