package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify/internal/testenv"
)

// node is one phoneverify serve process.
type node struct {
	name string
	cmd  *exec.Cmd
	addr string

	mu    sync.Mutex
	lines []string
	done  chan struct{} // closed when stderr is drained
}

var (
	readyLine      = regexp.MustCompile(`"msg":"phoneverify ready","addr":"([^"]+)"`)
	processSMSLine = regexp.MustCompile(`SMS to=\S+ verification=(VE[0-9a-f]{32}) body=".*?(\d{6})`)
)

// buildBinary builds the phoneverify binary once for the test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "phoneverify")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProcess runs bin serve in a working directory of its own with env, and
// waits (bounded) until it says it is ready.
func startProcess(t *testing.T, bin, name string, env []string) *node {
	t.Helper()
	n := &node{name: name, done: make(chan struct{})}
	n.cmd = exec.Command(bin, "serve")
	n.cmd.Dir = t.TempDir()
	n.cmd.Env = append(os.Environ(), env...)
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.cmd.Process.Kill()
		<-n.done
		_ = n.cmd.Wait()
		if t.Failed() {
			t.Logf("%s's log:\n%s", n.name, strings.Join(n.log(), "\n"))
		}
	})
	go func() {
		defer close(n.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			n.mu.Lock()
			n.lines = append(n.lines, sc.Text())
			n.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	waitFor(t, name+" ready", 60*time.Second, func() bool {
		for _, l := range n.log() {
			if m := readyLine.FindStringSubmatch(l); m != nil {
				n.addr = m[1]
				return true
			}
		}
		select {
		case <-n.done:
			t.Fatalf("%s exited before it was ready:\n%s", name, strings.Join(n.log(), "\n"))
		default:
		}
		return false
	})
	return n
}

func (n *node) log() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.lines)
}

// code returns the last code the node's log gateway printed for a
// verification. The line was written before the node answered, but reaches
// the test through a pipe: wait for it, bounded.
func (n *node) code(t *testing.T, id string) string {
	t.Helper()
	var code string
	waitFor(t, n.name+" printing the code of "+id, 10*time.Second, func() bool {
		lines := n.log()
		for i := len(lines) - 1; i >= 0; i-- {
			if m := processSMSLine.FindStringSubmatch(lines[i]); m != nil && m[1] == id {
				code = m[2]
				return true
			}
		}
		return false
	})
	return code
}

// TestMultiNode runs two phoneverify processes on one PostgreSQL database
// and one Redis, as behind a load balancer: whichever node takes a request,
// the result is the same, and a node killed with SIGKILL loses nothing it
// accepted.
func TestMultiNode(t *testing.T) {
	t.Parallel()
	dbURL := testenv.NewPostgresDatabase(t)
	redisURL := testenv.RedisURL(t)
	bin := buildBinary(t)
	env := []string{
		"PHONEVERIFY_ADDR=127.0.0.1:0",
		"PHONEVERIFY_DATABASE_URL=" + dbURL,
		"PHONEVERIFY_REDIS_URL=" + redisURL,
		"PHONEVERIFY_SECRET=" + testSecret,
		"PHONEVERIFY_API_KEY=" + testAPIKey,
		"PHONEVERIFY_DEFAULT_REGION=NP",
		"PHONEVERIFY_DB_MAX_OPEN_CONNS=4",
		// The subtests below start 12 verifications before the last two
		// starts, which this limit refuses whichever node takes them.
		"PHONEVERIFY_RATE_LIMIT_IP=12/10m",
		// Nodes reload the signing keys at this interval.
		"PHONEVERIFY_EXPIRE_INTERVAL=200ms",
	}
	// Started together: they migrate and create the signing key at once.
	var (
		wg   sync.WaitGroup
		a, b *node
	)
	wg.Add(2)
	go func() { defer wg.Done(); a = startProcess(t, bin, "node A", env) }()
	go func() { defer wg.Done(); b = startProcess(t, bin, "node B", env) }()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	client := &http.Client{Timeout: 20 * time.Second}

	kids := func(t *testing.T, n *node) []string {
		r := callAPI(t, client, n.addr, "GET", "/.well-known/jwks.json", "")
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		if err := json.Unmarshal([]byte(r.raw), &set); err != nil || r.status != 200 {
			t.Fatalf("%s: %d %s", n.name, r.status, r.raw)
		}
		var ids []string
		for _, k := range set.Keys {
			ids = append(ids, k.Kid)
		}
		slices.Sort(ids)
		return ids
	}
	t.Run("same JWKS", func(t *testing.T) {
		ka, kb := kids(t, a), kids(t, b)
		if len(ka) != 1 || !slices.Equal(ka, kb) {
			t.Errorf("key ids: A %v, B %v; want one key, the same on both", ka, kb)
		}
	})

	t.Run("start on A, check on B, introspect on A", func(t *testing.T) {
		const to = "+9779812340001"
		r := callAPI(t, client, a.addr, "POST", "/v1/verifications", `{"to":"`+to+`","subject":"user-1"}`)
		if r.status != 201 {
			t.Fatalf("start on A: %d %s", r.status, r.raw)
		}
		id := r.str("id")
		r = callAPI(t, client, b.addr, "POST", "/v1/verifications/check", `{"id":"`+id+`","code":"`+a.code(t, id)+`","subject":"user-1"}`)
		if r.status != 200 || r.str("status") != "approved" {
			t.Fatalf("check on B: %d %s", r.status, r.raw)
		}
		r = callAPI(t, client, a.addr, "GET", "/v1/tokens/"+r.str("token"), "")
		if r.status != 200 || r.str("phone_number") != to || r.str("subject") != "user-1" {
			t.Fatalf("introspect on A: %d %s", r.status, r.raw)
		}
		if r := callAPI(t, client, b.addr, "GET", "/v1/subjects/user-1", ""); r.status != 200 || r.str("phone_number") != to {
			t.Fatalf("subject on B: %d %s", r.status, r.raw)
		}
	})

	t.Run("send limit across nodes", func(t *testing.T) {
		const to = "+9779812340002"
		nodes := []*node{a, b, a, b, a, b, a}
		for i, n := range nodes {
			r := callAPI(t, client, n.addr, "POST", "/v1/verifications", `{"to":"`+to+`"}`)
			want := 201
			if i >= 5 { // the default service allows 5 sends per 10 minutes
				want = 429
			}
			if r.status != want {
				t.Fatalf("send %d on %s: %d %s, want %d", i+1, n.name, r.status, r.raw, want)
			}
			if want == 429 && (r.errCode() != "too_many_requests" || r.header.Get("Retry-After") == "") {
				t.Errorf("send %d on %s: %s (Retry-After %q), want too_many_requests with Retry-After", i+1, n.name, r.raw, r.header.Get("Retry-After"))
			}
		}
	})

	t.Run("key rotation reaches both nodes", func(t *testing.T) {
		before := kids(t, a)
		rotate := exec.CommandContext(t.Context(), bin, "keys", "rotate")
		rotate.Dir = t.TempDir()
		rotate.Env = append(os.Environ(), env...)
		if out, err := rotate.CombinedOutput(); err != nil {
			t.Fatalf("keys rotate: %v\n%s", err, out)
		}
		waitFor(t, "both nodes publishing the new key", 10*time.Second, func() bool {
			ka, kb := kids(t, a), kids(t, b)
			return len(ka) == 2 && slices.Equal(ka, kb)
		})
		// Tokens from either node now carry the new key and check anywhere.
		const to = "+9779812340003"
		r := callAPI(t, client, b.addr, "POST", "/v1/verifications", `{"to":"`+to+`"}`)
		id := r.str("id")
		r = callAPI(t, client, b.addr, "POST", "/v1/verifications/check", `{"id":"`+id+`","code":"`+b.code(t, id)+`"}`)
		if r.status != 200 {
			t.Fatalf("check on B: %d %s", r.status, r.raw)
		}
		if r := callAPI(t, client, a.addr, "GET", "/v1/tokens/"+r.str("token"), ""); r.status != 200 {
			t.Fatalf("introspect on A: %d %s", r.status, r.raw)
		}
		if got := kids(t, a); slices.Equal(got, before) {
			t.Errorf("key ids unchanged after the rotation: %v", got)
		}
	})

	// Verifications node A accepted, checked on B once A is killed.
	type accepted struct{ id, code string }
	var onA []accepted

	t.Run("IP limit across nodes", func(t *testing.T) {
		// 9 starts so far from 127.0.0.1; the limit is 12.
		nodes := []*node{a, a, a, b, a}
		for i, n := range nodes {
			to := "+97798123401" + string(rune('0'+i)) + "0"
			r := callAPI(t, client, n.addr, "POST", "/v1/verifications", `{"to":"`+to+`"}`)
			if i >= 3 {
				msg, _ := r.body["error"].(map[string]any)["message"].(string)
				if r.status != 429 || r.errCode() != "too_many_requests" || !strings.Contains(msg, "ip limit") || r.header.Get("Retry-After") == "" {
					t.Errorf("start %d on %s: %d %s, want 429 too_many_requests naming the ip limit, with Retry-After", 10+i, n.name, r.status, r.raw)
				}
				continue
			}
			if r.status != 201 {
				t.Fatalf("start %d on %s: %d %s", 10+i, n.name, r.status, r.raw)
			}
			if n == a {
				onA = append(onA, accepted{r.str("id"), a.code(t, r.str("id"))})
			}
		}
	})

	t.Run("kill -9 loses nothing", func(t *testing.T) {
		if len(onA) != 3 {
			t.Fatalf("node A accepted %d verifications, want 3", len(onA))
		}
		if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-a.done
		if err := a.cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("node A: Wait = %v, want killed", err)
		}
		for i, v := range onA {
			r := callAPI(t, client, b.addr, "POST", "/v1/verifications/check", `{"id":"`+v.id+`","code":"`+v.code+`"}`)
			if r.status != 200 || r.str("status") != "approved" {
				t.Errorf("verification %d accepted by A, checked on B: %d %s", i+1, r.status, r.raw)
			}
		}
	})
}
