package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	pv "github.com/phoneverify/phoneverify"
	gwlog "github.com/phoneverify/phoneverify/gateway/log"
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

// defaultSender returns the gateway of a node whose Sender was not set: the
// log gateway, wrapped in development by the inbox the demo reads.
func (m *Main) defaultSender() (pv.Sender, *web.Inbox) {
	logGateway := gwlog.New(m.stderr)
	if !m.cfg.devInbox() {
		return logGateway, nil
	}
	inbox := web.NewInbox(logGateway, m.Now)
	return inbox, inbox
}

// describeGateways says which gateway the node sends through, for the
// dashboard.
func describeGateways(s pv.Sender) []web.Gateway {
	switch s := s.(type) {
	case *web.Inbox:
		return []web.Gateway{{Name: "log", Description: "Development gateway: prints each message to standard error, and the demo's code pages show it. Nothing reaches a phone."}}
	case *gwlog.Sender:
		return []web.Gateway{{Name: "log", Description: "Development gateway: prints each message to standard error. Nothing reaches a phone."}}
	default:
		return []web.Gateway{{Name: fmt.Sprintf("%T", s), Description: "A sender set by the program that embeds phoneverify."}}
	}
}

// mountWeb serves the dashboard under /admin/ and, when enabled, the demo
// under /demo/, which calls the native API at the node's own address.
func (m *Main) mountWeb(ctx context.Context, mux *http.ServeMux, secret []byte, inbox *web.Inbox) error {
	h, err := web.New(ctx, web.Config{
		Engine: m.Engine, Store: m.Store, Secret: secret,
		Demo: m.cfg.demoEnabled(), APIURL: loopbackURL(m.ln.Addr()), Inbox: inbox,
		AdminPassword: m.cfg.AdminPassword, SecureCookies: strings.HasPrefix(m.cfg.PublicURL, "https://"),
		Gateways: describeGateways(m.Sender), Logger: m.log, Now: m.Now,
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
