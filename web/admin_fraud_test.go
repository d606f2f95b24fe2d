package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/verify"
)

func TestAdminFraudDecisions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{fraud: true})
	ctx := context.Background()
	svc := e.engine.DefaultServiceID()
	var refused []string
	for i := range 23 {
		to := fmt.Sprintf("+998901%06d", 123000+i)
		_, err := e.engine.Start(ctx, verify.StartRequest{ServiceID: svc, To: to, ClientIP: "198.51.100.7"})
		if pv.ErrorCode(err) == pv.EBlockedByFraud {
			refused = append(refused, to)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if len(refused) != 3 {
		t.Fatalf("refused %d starts, want 3", len(refused))
	}
	if p := e.signIn(t, adminPassword); p.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", p.status)
	}
	p := e.get(t, "/admin/")
	if p.status != http.StatusOK {
		t.Fatalf("status = %d", p.status)
	}
	body := strings.ReplaceAll(p.body, "&#43;", "+")
	for _, w := range []string{`id="fraud-decisions"`, "fraud_prefix", "blocked", "+998901", "UZ", "+99890*****", "198.51.100.7", "20 / 20"} {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	for _, n := range refused {
		if strings.Contains(body, n) || strings.Contains(body, n[4:]) {
			t.Errorf("page shows the full number %s", n)
		}
	}
}
