package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ServerConfig is how to run a node as a child process.
type ServerConfig struct {
	// Binary is the phoneverify executable; it is run as "Binary serve".
	Binary string
	// Dir is its working directory.
	Dir string
	// Env is its whole environment; PHONEVERIFY_ADDR is added.
	Env []string
	// ReadyTimeout bounds the wait for /readyz (default 60s).
	ReadyTimeout time.Duration
}

// Server is a node running as a child process, so that its memory and CPU
// time are its own, not the load generator's.
type Server struct {
	// URL is the node's base URL (http://127.0.0.1:port).
	URL string
	// Startup is the time from the process start to the first 200 from
	// /readyz.
	Startup time.Duration

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's error, once done

	mu   sync.Mutex
	tail []string // last lines of its standard error
}

// maxTail is how many lines of a node's standard error are kept for error
// reports.
const maxTail = 40

// StartServer starts a node on a free loopback port and waits until it is
// ready.
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	s := &Server{URL: "http://" + addr, done: make(chan struct{})}
	s.cmd = exec.Command(cfg.Binary, "serve")
	s.cmd.Dir = cfg.Dir
	s.cmd.Env = append(append([]string(nil), cfg.Env...), "PHONEVERIFY_ADDR="+addr)
	stopWithParent(s.cmd)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", cfg.Binary, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.tail = append(s.tail, sc.Text())
			if len(s.tail) > maxTail {
				s.tail = s.tail[len(s.tail)-maxTail:]
			}
			s.mu.Unlock()
		}
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	if err := s.waitReady(ctx, timeout); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\nits last log lines:\n%s", err, s.Log())
	}
	s.Startup = time.Since(t0)
	return s, nil
}

// waitReady polls /readyz every 2 ms: fine enough to time a start-up of
// tens of milliseconds, cheap enough not to slow it.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		if res, err := hc.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("the node exited before it was ready: %v", s.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the node was not ready within %s", timeout)
		}
	}
}

// Pid returns the node's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Log returns the last lines the node wrote to its standard error.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

// Stop asks the node to shut down (SIGTERM), as an operator would, and
// kills it if it has not exited within 20 seconds.
func (s *Server) Stop() error {
	select {
	case <-s.done:
		return s.exitErr()
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.exitErr()
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("the node did not stop within 20s of SIGTERM and was killed")
	}
}

func (s *Server) exitErr() error {
	if s.err != nil {
		return fmt.Errorf("the node exited: %v\nits last log lines:\n%s", s.err, s.Log())
	}
	return nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before the node binds it; the node then fails to start and says so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
