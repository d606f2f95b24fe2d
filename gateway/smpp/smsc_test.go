package smpp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
)

// testSMSC is a small SMSC on a loopback TCP listener, written with
// gosmpp's pdu package. It accepts transmitter binds with the right
// credentials, answers submit_sm with a message id or a queued error
// status, answers enquire_link and unbind, and can drop its connections.
type testSMSC struct {
	t                  *testing.T
	ln                 net.Listener
	systemID, password string

	mu           sync.Mutex
	conns        map[net.Conn]bool
	binds        int
	submits      []*pdu.SubmitSM
	statuses     []data.CommandStatusType // answers for the next submits; ESME_ROK when empty
	dropOnSubmit bool                     // close the connection instead of answering
	silent       bool                     // read submit_sm but never answer
	padErrors    bool                     // send error bind_resp with a body
	ids          int

	events chan string // "bind", "bind_refused", "submit_sm", "enquire_link", "enquire_link_resp", "unbind"
	wg     sync.WaitGroup
}

func newTestSMSC(t *testing.T) *testSMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &testSMSC{t: t, ln: ln, systemID: "verify", password: "s3cret", conns: map[net.Conn]bool{}, events: make(chan string, 1000)}
	c.wg.Add(1)
	go c.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		c.dropAll()
		c.wg.Wait()
	})
	return c
}

func (c *testSMSC) addr() string { return c.ln.Addr().String() }

func (c *testSMSC) accept() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		c.conns[conn] = true
		c.mu.Unlock()
		c.wg.Add(1)
		go c.serve(conn)
	}
}

// dropAll closes every open connection, as a failing SMSC or network would.
func (c *testSMSC) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.conns {
		_ = conn.Close()
	}
}

func (c *testSMSC) event(e string) {
	select {
	case c.events <- e:
	default:
	}
}

// await waits, at most d, for event e.
func (c *testSMSC) await(e string, d time.Duration) {
	c.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case got := <-c.events:
			if got == e {
				return
			}
		case <-timeout:
			c.t.Fatalf("SMSC: no %s within %v", e, d)
		}
	}
}

func (c *testSMSC) write(conn net.Conn, p pdu.PDU) {
	buf := pdu.NewBuffer(nil)
	p.Marshal(buf)
	_, _ = conn.Write(buf.Bytes())
}

// writeHeader sends a response with no body, as the specification has
// error responses sent.
func (c *testSMSC) writeHeader(conn net.Conn, h pdu.Header) {
	h.CommandLength = 16
	b := make([]byte, 16)
	binary.BigEndian.PutUint32(b[0:], uint32(h.CommandLength))
	binary.BigEndian.PutUint32(b[4:], uint32(h.CommandID))
	binary.BigEndian.PutUint32(b[8:], uint32(h.CommandStatus))
	binary.BigEndian.PutUint32(b[12:], uint32(h.SequenceNumber))
	_, _ = conn.Write(b)
}

func (c *testSMSC) serve(conn net.Conn) {
	defer c.wg.Done()
	defer func() {
		_ = conn.Close()
		c.mu.Lock()
		delete(c.conns, conn)
		c.mu.Unlock()
	}()
	r := bufio.NewReader(conn)
	bound := false
	for {
		p, err := pdu.Parse(r)
		if err != nil {
			return
		}
		switch p := p.(type) {
		case *pdu.BindRequest:
			resp := p.GetResponse().(*pdu.BindResp)
			switch {
			case p.CommandID != data.BIND_TRANSMITTER || p.BindingType != pdu.Transmitter:
				c.t.Errorf("SMSC: bind command %v, want bind_transmitter", p.CommandID)
				resp.CommandStatus = data.ESME_RINVBNDSTS
			case p.InterfaceVersion != data.SMPP_V34:
				c.t.Errorf("SMSC: interface version %#x, want 0x34", p.InterfaceVersion)
				resp.CommandStatus = data.ESME_RBINDFAIL
			case p.SystemID != c.systemID:
				resp.CommandStatus = data.ESME_RINVSYSID
			case p.Password != c.password:
				resp.CommandStatus = data.ESME_RINVPASWD
			}
			if resp.CommandStatus != data.ESME_ROK {
				c.mu.Lock()
				pad := c.padErrors
				c.mu.Unlock()
				if pad {
					c.write(conn, resp) // with an empty system_id, as some SMSCs do
				} else {
					c.writeHeader(conn, resp.GetHeader())
				}
				c.event("bind_refused")
				return
			}
			resp.SystemID = "TestSMSC"
			bound = true
			c.mu.Lock()
			c.binds++
			c.mu.Unlock()
			c.write(conn, resp)
			c.event("bind")
		case *pdu.SubmitSM:
			resp := p.GetResponse().(*pdu.SubmitSMResp)
			if !bound {
				resp.CommandStatus = data.ESME_RINVBNDSTS
				c.write(conn, resp)
				continue
			}
			c.mu.Lock()
			c.submits = append(c.submits, p)
			drop, silent := c.dropOnSubmit, c.silent
			status := data.ESME_ROK
			if len(c.statuses) > 0 {
				status, c.statuses = c.statuses[0], c.statuses[1:]
			}
			if status == data.ESME_ROK {
				c.ids++
				resp.MessageID = fmt.Sprintf("smsc-%d", c.ids)
			}
			c.mu.Unlock()
			c.event("submit_sm")
			if drop {
				return
			}
			if silent {
				continue
			}
			resp.CommandStatus = status
			if status != data.ESME_ROK {
				c.writeHeader(conn, resp.GetHeader())
				continue
			}
			c.write(conn, resp)
		case *pdu.EnquireLink:
			c.write(conn, p.GetResponse())
			c.event("enquire_link")
		case *pdu.EnquireLinkResp:
			c.event("enquire_link_resp")
		case *pdu.Unbind:
			c.write(conn, p.GetResponse())
			c.event("unbind")
			return
		default:
			c.t.Errorf("SMSC: unexpected %T", p)
		}
	}
}

// sendEnquireLink has the SMSC probe every bound connection.
func (c *testSMSC) sendEnquireLink() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.conns {
		e := pdu.NewEnquireLink()
		e.SetSequenceNumber(77)
		c.write(conn, e)
	}
}

func (c *testSMSC) set(f func(c *testSMSC)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

func (c *testSMSC) counts() (binds int, submits []*pdu.SubmitSM) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.binds, append([]*pdu.SubmitSM(nil), c.submits...)
}

// decoded returns a submit_sm's text and concatenation header.
func decoded(t *testing.T, sm *pdu.SubmitSM) (text string, coding byte, total, seq, ref byte, concat bool) {
	t.Helper()
	enc := sm.Message.Encoding()
	if enc == nil {
		t.Fatal("submit_sm with an unknown data_coding")
	}
	b, _ := sm.Message.GetMessageData()
	text, err := enc.Decode(b)
	if err != nil {
		t.Fatalf("decoding short_message: %v", err)
	}
	total, seq, ref, concat = sm.Message.UDH().GetConcatInfo()
	if concat != (sm.EsmClass&data.SM_UDH_GSM != 0) {
		t.Fatalf("UDH present = %v but esm_class = %#x", concat, sm.EsmClass)
	}
	return text, enc.DataCoding(), total, seq, ref, concat
}
