package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of CPU times in /proc: 100 on
// every architecture Go supports.
const clockTick = 100

// PeakRSS returns the peak resident set size of process pid (VmHWM in
// /proc/<pid>/status), in bytes. It works while the process runs.
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				break
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// CPUTime returns the user plus system CPU time process pid has used.
func CPUTime(pid int) (time.Duration, error) {
	_, d, err := procStat(fmt.Sprintf("/proc/%d/stat", pid))
	return d, err
}

// procStat reads the command name and CPU time from a /proc/<pid>/stat file.
func procStat(path string) (string, time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, err
	}
	// The command name is in parentheses and may hold spaces.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, errors.New("malformed " + path)
	}
	f := strings.Fields(string(b[end+1:]))
	// After the name: state(0) ... utime(11) stime(12).
	if len(f) < 13 {
		return "", 0, errors.New("malformed " + path)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, errors.New("malformed " + path)
	}
	return string(b[open+1 : end]), time.Duration(ut+st) * time.Second / clockTick, nil
}

// CPUByCommand returns the CPU time used so far by every process whose
// command name is one of names (e.g. "postgres", "redis-server"), summed per
// name. Processes that exit between two readings drop out of the sum, so
// differences are a lower bound.
func CPUByCommand(names ...string) map[string]time.Duration {
	out := map[string]time.Duration{}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		comm, d, err := procStat(p)
		if err != nil {
			continue
		}
		for _, n := range names {
			if comm == n {
				out[n] += d
			}
		}
	}
	return out
}

// CPUOfPostgresDatabase returns the CPU time used so far by the PostgreSQL
// backends connected to database db: their process titles read
// "postgres: [cluster: ]user db host(port) state". Backends that exit between two
// readings drop out of the sum, so a difference is a lower bound; the
// server's shared processes (WAL writer, checkpointer) are not counted.
func CPUOfPostgresDatabase(db string) time.Duration {
	var sum time.Duration
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		comm, d, err := procStat(p)
		if err != nil || comm != "postgres" {
			continue
		}
		title, err := os.ReadFile(strings.TrimSuffix(p, "stat") + "cmdline")
		if err != nil {
			continue
		}
		f := strings.Fields(strings.ReplaceAll(string(title), "\x00", " "))
		if len(f) == 0 || f[0] != "postgres:" {
			continue
		}
		f = f[1:]
		if len(f) > 0 && strings.HasSuffix(f[0], ":") {
			f = f[1:] // the cluster name: "postgres: 15/main: user db …"
		}
		if len(f) >= 2 && f[1] == db {
			sum += d
		}
	}
	return sum
}

// MachineCPU returns the machine's busy and total CPU time summed over all
// cores, from the first line of /proc/stat.
func MachineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, errors.New("malformed /proc/stat")
	}
	var sum, idle int64
	for i, s := range f[1:] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, errors.New("malformed /proc/stat")
		}
		if i >= 8 { // guest times are already in user and nice
			break
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * time.Second / clockTick, time.Duration(sum) * time.Second / clockTick, nil
}

// LoadAverage returns /proc/loadavg's first three fields ("2.01 1.87 1.60").
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}
