package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
	gwlog "github.com/phoneverify/phoneverify/gateway/log"
	"github.com/phoneverify/phoneverify/gateway/messagebird"
	"github.com/phoneverify/phoneverify/gateway/router"
	"github.com/phoneverify/phoneverify/gateway/smpp"
	"github.com/phoneverify/phoneverify/gateway/sparrow"
	"github.com/phoneverify/phoneverify/gateway/twilio"
	"github.com/phoneverify/phoneverify/gateway/vonage"
	"github.com/phoneverify/phoneverify/gateway/webhook"
)

// GatewayConfigs holds the configuration of every enabled gateway, read by
// each gateway package's ConfigFromEnv; a nil field is a disabled gateway.
type GatewayConfigs struct {
	Twilio      *twilio.Config
	Vonage      *vonage.Config
	MessageBird *messagebird.Config
	Sparrow     *sparrow.Config
	SMPP        *smpp.Config
	Webhook     *webhook.Config
}

// loadGateways reads every gateway's PHONEVERIFY_GATEWAY_* variables.
func loadGateways(getenv func(string) string) (GatewayConfigs, error) {
	var g GatewayConfigs
	var errs []error
	if c, ok, err := twilio.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else if ok {
		g.Twilio = &c
	}
	if c, ok, err := vonage.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else if ok {
		g.Vonage = &c
	}
	if c, ok, err := messagebird.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else if ok {
		g.MessageBird = &c
	}
	if c, ok, err := sparrow.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else if ok {
		g.Sparrow = &c
	}
	if c, ok, err := smpp.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else if ok {
		g.SMPP = &c
	}
	if c, ok, err := webhook.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else if ok {
		g.Webhook = &c
	}
	return g, errors.Join(errs...)
}

// gatewaySet is the senders built from the configuration, and what must be
// closed at shutdown.
type gatewaySet struct {
	gateways []router.Gateway
	closers  []io.Closer
}

// buildGateways makes a sender for every enabled gateway, in a fixed order
// (twilio, vonage, messagebird, sparrow, smpp, webhook) that is also the
// default route when PHONEVERIFY_ROUTES has no "*". With none enabled it
// returns the log gateway, writing to stderr. The HTTP gateways share one
// client whose pool keeps a connection per worker alive.
func buildGateways(cfg *Config, stderr io.Writer) (*gatewaySet, error) {
	g := cfg.Gateways
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = max(cfg.OutboxWorkers, 2)
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	set := &gatewaySet{}
	add := func(name string, s pv.Sender, err error) error {
		if err != nil {
			return fmt.Errorf("gateway %s: %w", name, err)
		}
		set.gateways = append(set.gateways, router.Gateway{Name: name, Sender: s})
		return nil
	}
	var errs []error
	if g.Twilio != nil {
		tc := *g.Twilio
		if tc.StatusCallback == "" {
			tc.StatusCallback = twilioCallbackURL(cfg)
		}
		s, err := twilio.New(tc, client)
		errs = append(errs, add(twilio.Name, s, err))
	}
	if g.Vonage != nil {
		s, err := vonage.New(*g.Vonage, client)
		errs = append(errs, add(vonage.Name, s, err))
	}
	if g.MessageBird != nil {
		s, err := messagebird.New(*g.MessageBird, client)
		errs = append(errs, add(messagebird.Name, s, err))
	}
	if g.Sparrow != nil {
		s, err := sparrow.New(*g.Sparrow, client)
		errs = append(errs, add(sparrow.Name, s, err))
	}
	if g.SMPP != nil {
		s, err := smpp.New(*g.SMPP)
		if err == nil {
			set.closers = append(set.closers, s)
		}
		errs = append(errs, add(smpp.Name, s, err))
	}
	if g.Webhook != nil {
		s, err := webhook.New(*g.Webhook, client)
		errs = append(errs, add(webhook.Name, s, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(set.gateways) == 0 {
		set.gateways = append(set.gateways, router.Gateway{Name: "log", Sender: gwlog.New(stderr)})
	}
	return set, nil
}

// twilioCallbackURL returns the URL Twilio posts status callbacks to: the
// one configured for the gateway, else the public URL's receipt endpoint,
// else "" (no callbacks).
func twilioCallbackURL(cfg *Config) string {
	if cfg.Gateways.Twilio != nil && cfg.Gateways.Twilio.StatusCallback != "" {
		return cfg.Gateways.Twilio.StatusCallback
	}
	if cfg.PublicURL == "" {
		return ""
	}
	return strings.TrimRight(cfg.PublicURL, "/") + "/v1/receipts/twilio"
}

// newRouter builds the router over the enabled gateways and
// PHONEVERIFY_ROUTES; a route naming a gateway that is not enabled is a
// startup error.
func newRouter(cfg *Config, set *gatewaySet) (*router.Router, error) {
	routes, err := router.ParseRoutes(cfg.Routes)
	if err != nil {
		return nil, fmt.Errorf("PHONEVERIFY_ROUTES: %w", err)
	}
	r, err := router.New(router.Config{Gateways: set.gateways, Routes: routes,
		Threshold: cfg.CircuitThreshold, Cooldown: cfg.CircuitCooldown})
	if err != nil {
		return nil, fmt.Errorf("PHONEVERIFY_ROUTES: %w", err)
	}
	return r, nil
}

func (s *gatewaySet) close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
