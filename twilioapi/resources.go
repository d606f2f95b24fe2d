package twilioapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// dateFormat is how Twilio writes times: UTC, whole seconds.
const dateFormat = "2006-01-02T15:04:05Z"

func date(t time.Time) string { return t.UTC().Format(dateFormat) }

// strOrNil returns nil for "", so that JSON shows null as Twilio does.
func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Paging defaults and limits, as Twilio's.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// meta is Twilio's paging envelope.
type meta struct {
	Page            int     `json:"page"`
	PageSize        int     `json:"page_size"`
	FirstPageURL    string  `json:"first_page_url"`
	PreviousPageURL *string `json:"previous_page_url"`
	URL             string  `json:"url"`
	NextPageURL     *string `json:"next_page_url"`
	Key             string  `json:"key"`
}

// pager reads Page and PageSize and writes the paging envelope.
type pager struct {
	page, size int
	r          *http.Request
}

func newPager(r *http.Request, f *form) *pager {
	p := &pager{size: defaultPageSize, r: r}
	if n := f.integer("PageSize"); n != nil {
		if *n < 1 || *n > maxPageSize {
			f.fail("PageSize", "must be between 1 and 1000")
		} else {
			p.size = *n
		}
	}
	if n := f.integer("Page"); n != nil {
		if *n < 0 || *n > 1_000_000 {
			f.fail("Page", "must be between 0 and 1000000")
		} else {
			p.page = *n
		}
	}
	return p
}

func (p *pager) offset() int { return p.page * p.size }

// window returns the bounds of the page within n items.
func (p *pager) window(n int) (lo, hi int) {
	lo = min(p.offset(), n)
	return lo, min(lo+p.size, n)
}

// meta returns the envelope; more reports whether a next page exists.
func (p *pager) meta(key string, more bool) meta {
	m := meta{Page: p.page, PageSize: p.size, Key: key, FirstPageURL: p.url(0), URL: p.url(p.page)}
	if p.page > 0 {
		u := p.url(p.page - 1)
		m.PreviousPageURL = &u
	}
	if more {
		u := p.url(p.page + 1)
		m.NextPageURL = &u
	}
	return m
}

// url returns the absolute URL of a page, keeping the request's filters.
func (p *pager) url(page int) string {
	q := p.r.URL.Query()
	q.Set("PageSize", strconv.Itoa(p.size))
	q.Set("Page", strconv.Itoa(page))
	q.Del("PageToken")
	if page > 0 {
		q.Set("PageToken", "PT"+strconv.Itoa(page*p.size))
	}
	return baseURL(p.r) + p.r.URL.Path + "?" + encodeQuery(q)
}

// encodeQuery is url.Values.Encode with PageSize and Page first, as in
// Twilio's links.
func encodeQuery(q url.Values) string {
	var parts []string
	for _, k := range []string{"PageSize", "Page"} {
		if v := q.Get(k); v != "" {
			parts = append(parts, k+"="+url.QueryEscape(v))
			q.Del(k)
		}
	}
	if rest := q.Encode(); rest != "" {
		parts = append(parts, rest)
	}
	return strings.Join(parts, "&")
}
