// Package slidinglog is the sliding-log decision shared by the in-process
// and SQL limiters (the Redis limiter runs the same steps in Lua).
package slidinglog

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

// Millis returns t as unix milliseconds, the resolution of every limiter.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// Decide applies one event at now (unix ms) to log, the ascending times (unix
// ms) of the events allowed so far, under limit. It returns the log to keep:
// only the events still in the window (now − Window, now], plus now if the
// event is allowed. Events later than now (another node's clock ahead of
// this one) stay and count.
func Decide(log []int64, now int64, limit pv.Limit) ([]int64, pv.Decision) {
	window := limit.Window.Milliseconds()
	cutoff := now - window
	i := 0
	for i < len(log) && log[i] <= cutoff {
		i++
	}
	kept := log[i:]
	if n := len(kept); n >= limit.Max {
		// The event that makes room is the one that leaves n−Max+1 events.
		retry := time.Duration(kept[n-limit.Max]+window-now) * time.Millisecond
		return kept, pv.Decision{RetryAfter: max(retry, time.Millisecond)}
	}
	pos, _ := slices.BinarySearch(kept, now+1) // after equal times
	kept = slices.Insert(kept, pos, now)
	return kept, pv.Decision{Allowed: true, Remaining: limit.Max - len(kept)}
}

// Encode renders a log as space-separated decimal unix milliseconds.
func Encode(log []int64) string {
	var b strings.Builder
	for i, t := range log {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatInt(t, 10))
	}
	return b.String()
}

// Decode reads what Encode wrote; it sorts the result, so a hand-edited or
// merged log still works.
func Decode(s string) ([]int64, error) {
	fields := strings.Fields(s)
	log := make([]int64, 0, len(fields)+1)
	for _, f := range fields {
		t, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, errors.New("slidinglog: malformed event time")
		}
		log = append(log, t)
	}
	slices.Sort(log)
	return log, nil
}
