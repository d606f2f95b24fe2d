package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/token"
	"github.com/phoneverify/phoneverify/verify"
)

// admin is what the administration subcommands need: the store and an
// engine, without the HTTP server.
type admin struct {
	*Main
}

func openAdmin(ctx context.Context, cfg *Config, stderr io.Writer) (*admin, error) {
	m := NewMain(cfg, stderr)
	st, err := openStore(ctx, cfg, m.log)
	if err != nil {
		return nil, err
	}
	m.Store = st
	secret, err := serverSecret(cfg, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	hasher, err := otp.NewHasher(secret)
	if err != nil {
		st.Close()
		return nil, err
	}
	if m.Keys, err = token.NewKeyring(ctx, st, secret, m.Now(), token.Options{Issuer: cfg.Issuer}); err != nil {
		st.Close()
		return nil, err
	}
	sealer, err := otp.NewSealer(secret)
	if err != nil {
		st.Close()
		return nil, err
	}
	// Administration commands start no verification, so nothing wakes
	// outbox workers here.
	m.Engine, err = verify.New(verify.Config{Store: st, Sealer: sealer, Hasher: hasher, Keys: m.Keys, Now: m.Now})
	if err != nil {
		st.Close()
		return nil, err
	}
	if _, err := m.Engine.EnsureDefaultService(ctx, pv.NewService(cfg.AppName)); err != nil {
		st.Close()
		return nil, err
	}
	return &admin{m}, nil
}

// splitID takes a leading positional argument (an id) off args.
func splitID(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, rest, err := LoadConfig(getenv, newFlagSet("migrate", stderr), args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("migrate: unexpected arguments %q", rest)
	}
	st, err := openStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stdout, "migrations applied (%s)\n", st.Dialect())
	return nil
}

func runAPIKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("apikey: want create, list or revoke")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("apikey "+sub, stderr)
	name := fs.String("name", "", "name of the new key")
	service := fs.String("service", "", "service id (default: the default service)")
	scopes := fs.String("scopes", "", "comma-separated scopes (default: all): "+strings.Join(verify.AllScopes, ","))
	twilio := fs.Bool("twilio", false, "make credentials for the Twilio-compatible API (account SID, API key SID, auth token)")
	allowedIPs := fs.String("allowed-ips", "", "comma-separated CIDRs or addresses the key is accepted from (default: anywhere)")
	id, args := splitID(args)
	cfg, rest, err := LoadConfig(getenv, fs, args)
	if err != nil {
		return err
	}
	if id == "" && len(rest) > 0 {
		id, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return fmt.Errorf("apikey %s: unexpected arguments %q", sub, rest)
	}
	a, err := openAdmin(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	switch sub {
	case "create":
		svc := *service
		if svc == "" || svc == "default" {
			svc = a.Engine.DefaultServiceID()
		}
		allowed, err := verify.ParseAllowedIPs(*allowedIPs)
		if err != nil {
			return fmt.Errorf("apikey create: --allowed-ips: %s", pv.ErrorMessage(err))
		}
		var list []string
		if *scopes != "" {
			for _, sc := range strings.Split(*scopes, ",") {
				list = append(list, strings.TrimSpace(sc))
			}
		}
		if *twilio {
			creds, k, err := a.Engine.CreateCompatKeyWithScopes(ctx, svc, *name, list, allowed)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "Twilio-compatible credentials %s (%s) created; the auth token is shown only once.\n", k.ID, k.Name)
			fmt.Fprintf(stderr, "Authenticate as TWILIO_ACCOUNT_SID:TWILIO_AUTH_TOKEN, or TWILIO_API_KEY:TWILIO_AUTH_TOKEN.\n")
			fmt.Fprintf(stdout, "TWILIO_ACCOUNT_SID=%s\nTWILIO_API_KEY=%s\nTWILIO_AUTH_TOKEN=%s\n", creds.AccountSID, creds.APIKeySID, creds.Secret)
			return nil
		}
		raw, k, err := a.Engine.CreateAPIKeyWithIPs(ctx, svc, *name, list, allowed)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "API key %s (%s) created for service %s; it is shown only once:\n", k.ID, k.Name, k.ServiceID)
		fmt.Fprintln(stdout, raw)
		return nil
	case "list":
		keys, err := a.Store.APIKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSERVICE\tSCOPES\tALLOWED IPS\tCREATED\tLAST USED\tSTATUS")
		for _, k := range keys {
			status := "active"
			if k.RevokedAt != nil {
				status = "revoked " + k.RevokedAt.UTC().Format(time.RFC3339)
			}
			allowed := "any"
			if len(k.AllowedIPs) > 0 {
				ps := make([]string, len(k.AllowedIPs))
				for i, p := range k.AllowedIPs {
					ps[i] = p.String()
				}
				allowed = strings.Join(ps, ",")
			}
			used := "never"
			if k.LastUsedAt != nil {
				used = k.LastUsedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, k.ServiceID, strings.Join(k.Scopes, ","),
				allowed, k.CreatedAt.UTC().Format(time.RFC3339), used, status)
		}
		return tw.Flush()
	case "revoke":
		if id == "" {
			return errors.New("apikey revoke: give the key's id (see apikey list)")
		}
		if err := a.Engine.RevokeAPIKey(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "API key %s revoked\n", id)
		return nil
	default:
		return fmt.Errorf("apikey: unknown subcommand %q (want create, list or revoke)", sub)
	}
}

// serviceFlags registers a flag per service setting; apply copies the ones
// given on the command line into s.
func serviceFlags(fs *flag.FlagSet) (apply func(s *pv.Service) error) {
	name := fs.String("name", "", "service name ({app} in messages)")
	codeLength := fs.Int("code-length", 0, "digits per code (4–10)")
	codeTTL := fs.Duration("code-ttl", 0, "code lifetime, e.g. 10m or 45s")
	maxSends := fs.Int("max-sends", 0, "codes per number per send window")
	sendWindow := fs.Duration("send-window", 0, "send window, e.g. 10m")
	maxAttempts := fs.Int("max-attempts", 0, "check attempts per verification")
	template := fs.String("template", "", "message template with {code}, {app}, {minutes}")
	webotp := fs.String("webotp-domain", "", "domain for the WebOTP last line")
	tokenTTL := fs.Duration("token-ttl", 0, "lifetime of issued tokens")
	oneSubject := fs.String("one-subject-per-phone", "", "true|false: refuse a phone verified by another subject")
	rejectVerified := fs.String("reject-already-verified", "", "true|false: refuse re-verifying a subject's verified phone")
	limitFlags := map[string]*string{}
	for _, l := range limitFlagNames {
		limitFlags[l.flag] = fs.String(l.flag, "", l.help+": N/DURATION, off, or default (the server-wide setting)")
	}
	allowCountries := fs.String("allow-countries", "", "comma-separated ISO countries codes may be sent to (none: every country not denied)")
	denyCountries := fs.String("deny-countries", "", "comma-separated ISO countries codes are never sent to (none: clear the list)")
	return func(s *pv.Service) error {
		var err error
		fs.Visit(func(f *flag.Flag) {
			if v, ok := limitFlags[f.Name]; ok {
				err = errors.Join(err, setLimitFlag(&s.Limits, f.Name, *v))
				return
			}
			switch f.Name {
			case "allow-countries":
				cc, e := pv.ParseCountries(*allowCountries)
				s.Limits.AllowCountries, err = cc, errors.Join(err, flagErr(f.Name, e))
			case "deny-countries":
				cc, e := pv.ParseCountries(*denyCountries)
				s.Limits.DenyCountries, err = cc, errors.Join(err, flagErr(f.Name, e))
			case "name":
				s.Name = *name
			case "code-length":
				s.CodeLength = *codeLength
			case "code-ttl":
				s.CodeTTL = *codeTTL
			case "max-sends":
				s.MaxSends = *maxSends
			case "send-window":
				s.SendWindow = *sendWindow
			case "max-attempts":
				s.MaxAttempts = *maxAttempts
			case "template":
				s.Template = *template
			case "webotp-domain":
				s.WebOTPDomain = *webotp
			case "token-ttl":
				s.TokenTTL = *tokenTTL
			case "one-subject-per-phone":
				s.OneSubjectPerPhone, err = parseBool(f.Name, *oneSubject, err)
			case "reject-already-verified":
				s.RejectAlreadyVerified, err = parseBool(f.Name, *rejectVerified, err)
			}
		})
		if err != nil {
			return err
		}
		return verify.ValidateService(s)
	}
}

// limitFlagNames maps each service limit to its flag.
var limitFlagNames = []struct{ flag, limit, help string }{
	{"per-number-day", "per_number_day", "codes per number over a long window (beside --max-sends per --send-window)"},
	{"per-ip", "per_ip", "starts per client IP address (IPv6: per /64)"},
	{"per-subject", "per_subject", "starts per subject"},
	{"per-country", "per_country", "starts per destination country"},
	{"budget-hour", "budget_hour", "SMS budget per hour (N or N/1h); reaching it trips the service's breaker"},
	{"budget-day", "budget_day", "SMS budget per day (N or N/24h); reaching it trips the service's breaker"},
	{"failed-checks", "failed_checks", "codes compared per number across verifications"},
}

// setLimitFlag sets the limit a flag names; a budget may be a bare count.
func setLimitFlag(l *pv.ServiceLimits, flagName, v string) error {
	for _, lf := range limitFlagNames {
		if lf.flag != flagName {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 && strings.HasPrefix(lf.limit, "budget_") {
			w := time.Hour
			if lf.limit == "budget_day" {
				w = 24 * time.Hour
			}
			v = fmt.Sprintf("%d/%s", n, w)
		}
		lim, err := pv.ParseLimitSetting(v)
		if err != nil {
			return flagErr(flagName, err)
		}
		*l.Field(lf.limit) = lim
	}
	return nil
}

func flagErr(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("--%s: %w", name, err)
}

// describeLimits renders a service's own limits, for service list.
func describeLimits(l *pv.ServiceLimits) string {
	var parts []string
	for _, name := range pv.LimitNames {
		if p := *l.Field(name); p != nil {
			parts = append(parts, name+"="+p.String())
		}
	}
	if len(l.AllowCountries) > 0 {
		parts = append(parts, "allow="+strings.Join(l.AllowCountries, ","))
	}
	if len(l.DenyCountries) > 0 {
		parts = append(parts, "deny="+strings.Join(l.DenyCountries, ","))
	}
	if len(parts) == 0 {
		return "defaults"
	}
	return strings.Join(parts, " ")
}

func parseBool(name, v string, prev error) (bool, error) {
	switch v {
	case "true":
		return true, prev
	case "false":
		return false, prev
	}
	return false, errors.Join(prev, fmt.Errorf("--%s wants true or false", name))
}

func runService(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("service: want list, create or update")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("service "+sub, stderr)
	apply := serviceFlags(fs)
	id, args := splitID(args)
	cfg, rest, err := LoadConfig(getenv, fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("service %s: unexpected arguments %q", sub, rest)
	}
	a, err := openAdmin(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	switch sub {
	case "list":
		list, err := a.Store.Services(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tDEFAULT\tCODE\tTTL\tSENDS\tATTEMPTS\tTOKEN TTL\tLIMITS")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\t%d/%s\t%d\t%s\t%s\n", s.ID, s.Name, s.IsDefault, s.CodeLength, s.CodeTTL, s.MaxSends, s.SendWindow, s.MaxAttempts, s.TokenTTL, describeLimits(&s.Limits))
		}
		return tw.Flush()
	case "create":
		s := pv.NewService("")
		if err := apply(s); err != nil {
			return err
		}
		if s.ID, err = a.Engine.NewID("VA"); err != nil {
			return err
		}
		s.CreatedAt, s.UpdatedAt = a.Engine.Now(), a.Engine.Now()
		if err := a.Store.CreateService(ctx, s); err != nil {
			return err
		}
		fmt.Fprintln(stdout, s.ID)
		return nil
	case "update":
		if id == "" {
			return errors.New("service update: give the service id, or default")
		}
		if id == "default" {
			id = a.Engine.DefaultServiceID()
		}
		// Through the engine, so that a change of the service in between
		// (say, of its limits through the API) is kept, not undone.
		s, _, err := a.Engine.ChangeService(ctx, id, func(s *pv.Service, _ *pv.ServiceFeatures) error { return apply(s) })
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "service %s updated\n", s.ID)
		return nil
	default:
		return fmt.Errorf("service: unknown subcommand %q (want list, create or update)", sub)
	}
}

func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return errors.New("keys: want rotate")
	}
	cfg, _, err := LoadConfig(getenv, newFlagSet("keys rotate", stderr), args[1:])
	if err != nil {
		return err
	}
	a, err := openAdmin(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Keys.Rotate(ctx, a.Engine.Now()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signing key %s is now active; earlier keys verify until their tokens expire\n", a.Keys.ActiveKeyID())
	return nil
}
