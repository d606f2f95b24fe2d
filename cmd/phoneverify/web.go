package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/web"
)

// demoEnabled applies PHONEVERIFY_DEMO: as set, or else on with SQLite (a
// development node) and off with PostgreSQL (production).
func (c *Config) demoEnabled() bool {
	if c.Demo != nil {
		return *c.Demo
	}
	_, sqlite := store.SQLitePath(c.DatabaseURL)
	return sqlite
}

// devInbox reports whether the demo's code pages may show the messages the
// log gateway prints: only in development (SQLite), with the demo on, and
// only in front of the log gateway, which delivers nothing to a phone.
func (c *Config) devInbox() bool {
	_, sqlite := store.SQLitePath(c.DatabaseURL)
	return sqlite && c.demoEnabled()
}

// withDevInbox wraps the node's sender in the inbox the demo's code pages
// read, in development only and only when the log gateway is the one
// gateway enabled: a code bound for a real phone is never shown on a page.
func (m *Main) withDevInbox(s pv.Sender) (pv.Sender, *web.Inbox) {
	if !m.cfg.devInbox() || m.gateways == nil || len(m.gateways.gateways) != 1 || m.gateways.gateways[0].Name != "log" {
		return s, nil
	}
	inbox := web.NewInbox(s, m.Now)
	return inbox, inbox
}

// describeGateways says which gateways the node sends through, for the
// dashboard.
func (m *Main) describeGateways(inbox *web.Inbox) []web.Gateway {
	if m.gateways == nil {
		return []web.Gateway{{Name: fmt.Sprintf("%T", m.Sender), Description: "A sender set by the program that embeds phoneverify."}}
	}
	out := make([]web.Gateway, 0, len(m.gateways.gateways))
	for _, g := range m.gateways.gateways {
		d := "Enabled; chosen per destination by PHONEVERIFY_ROUTES, with failover."
		if g.Name == "log" {
			d = "Development gateway: prints each message to standard error. Nothing reaches a phone."
			if inbox != nil {
				d += " The demo's code pages show it."
			}
		}
		out = append(out, web.Gateway{Name: g.Name, Description: d})
	}
	return out
}

// mountWeb serves the dashboard under /admin/ and, when enabled, the demo
// under /demo/, which calls the native API at the node's own address.
func (m *Main) mountWeb(ctx context.Context, mux *http.ServeMux, secret []byte, inbox *web.Inbox) error {
	h, err := web.New(ctx, web.Config{
		Engine: m.Engine, Store: m.Store, Secret: secret,
		Demo: m.cfg.demoEnabled(), APIURL: loopbackURL(m.ln.Addr()), Inbox: inbox,
		AdminPassword: m.cfg.AdminPassword, SecureCookies: strings.HasPrefix(m.cfg.PublicURL, "https://"),
		Gateways: m.describeGateways(inbox), Logger: m.log, Now: m.Now, ClientIP: m.cfg.TrustedProxies.ClientIP,
	})
	if err != nil {
		return err
	}
	h.Mount(mux)
	if m.cfg.demoEnabled() {
		m.log.Info("demo apps enabled", "path", "/demo/", "development_inbox", inbox != nil)
	}
	return nil
}

// loopbackURL returns an http URL that reaches a listener from the same
// machine: its own address, with an unspecified IP (":8080") as 127.0.0.1.
func loopbackURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}
