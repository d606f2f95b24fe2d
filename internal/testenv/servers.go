package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// unavailable skips tb because a program is not installed, or fails it when
// services are required.
func unavailable(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv(RequireVar) == "1" {
		tb.Fatal(msg + " (" + RequireVar + "=1 forbids skipping)")
	}
	tb.Skip(msg)
}

// freePort returns a loopback TCP port nothing listens on at the moment.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// PostgresServer is a PostgreSQL cluster of one test's own, in a temporary
// directory, on a free loopback port: a fault test stops and starts it
// without touching the shared server other tests use.
type PostgresServer struct {
	tb   testing.TB
	bin  string // directory of initdb and pg_ctl
	dir  string
	port int
	// asPostgres runs the programs as the postgres OS user: initdb and the
	// server refuse to run as root.
	asPostgres bool
}

// postgresBin returns the directory holding initdb and pg_ctl: Debian's
// /usr/lib/postgresql/<newest>/bin, else the PATH's.
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// NewPostgresServer initialises a cluster (trust authentication, user
// postgres) and starts it; it is stopped and removed when tb ends. Without
// PostgreSQL's programs it skips tb, or fails it when services are required.
func NewPostgresServer(tb testing.TB) *PostgresServer {
	tb.Helper()
	bin := postgresBin()
	if bin == "" {
		unavailable(tb, "PostgreSQL's initdb is not installed (apt-get install postgresql)")
	}
	s := &PostgresServer{tb: tb, bin: bin, port: freePort(tb), asPostgres: os.Geteuid() == 0}
	// Not t.TempDir: its parent is private to root, and the server runs as
	// postgres.
	dir, err := os.MkdirTemp("", "pvtest-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	s.dir = dir
	tb.Cleanup(func() {
		_ = s.pgctl("stop", "-m", "immediate")
		_ = os.RemoveAll(dir)
	})
	if err := os.MkdirAll(s.data(), 0o700); err != nil {
		tb.Fatal(err)
	}
	if s.asPostgres {
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable(tb, "running as root needs the postgres OS user to run PostgreSQL: "+err.Error())
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{dir, s.data()} {
			if err := os.Chown(p, uid, gid); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if out, err := s.command(filepath.Join(bin, "initdb"), "-D", s.data(), "-A", "trust", "-U", "postgres",
		"--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	s.Start()
	return s
}

func (s *PostgresServer) data() string { return filepath.Join(s.dir, "data") }

// command runs a PostgreSQL program, as the postgres user when needed.
func (s *PostgresServer) command(name string, args ...string) *exec.Cmd {
	if s.asPostgres {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func (s *PostgresServer) pgctl(args ...string) error {
	args = append([]string{"-D", s.data(), "-w", "-t", "60"}, args...)
	out, err := s.command(filepath.Join(s.bin, "pg_ctl"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// URL is the server's postgres:// URL (database postgres).
func (s *PostgresServer) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Start starts the server and waits until it accepts connections.
func (s *PostgresServer) Start() {
	s.tb.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50", s.port, s.dir)
	if err := s.pgctl("-l", filepath.Join(s.dir, "server.log"), "-o", opts, "start"); err != nil {
		s.tb.Fatal(err)
	}
}

// Crash stops the server at once, as a crash would (pg_ctl stop -m
// immediate: no checkpoint, connections dropped; the next start
// recovers from the WAL).
func (s *PostgresServer) Crash() {
	s.tb.Helper()
	if err := s.pgctl("stop", "-m", "immediate"); err != nil {
		s.tb.Fatal(err)
	}
}

// RedisServer is a redis-server of one test's own, a child process on a
// free loopback port, without persistence: a fault test kills and restarts
// it without touching the shared Redis.
type RedisServer struct {
	tb   testing.TB
	bin  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
}

// NewRedisServer starts a redis-server, killed when tb ends. Without the
// program it skips tb, or fails it when services are required.
func NewRedisServer(tb testing.TB) *RedisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(tb, "redis-server is not installed (apt-get install redis-server)")
	}
	s := &RedisServer{tb: tb, bin: bin, port: freePort(tb)}
	tb.Cleanup(s.Kill)
	s.Start()
	return s
}

// URL is the server's redis:// URL (database 0).
func (s *RedisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Start runs the server on its port and waits (bounded) until it answers
// PING.
func (s *RedisServer) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", os.TempDir())
	if err := cmd.Start(); err != nil {
		s.tb.Fatal(err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for !s.pong() {
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server on port %d did not answer PING within 20s", s.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *RedisServer) pong() bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *RedisServer) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
