package web

import (
	"crypto/rand"
	"net/http"
	"sync"
	"time"
)

// The demo's sessions live in memory: the demo is a development tool on one
// node. (Its accounts are in the database; a sign-in does not survive a
// restart.)
const (
	demoSessionCookie = "pv_demo_session"
	demoSessionTTL    = 2 * time.Hour
	maxDemoSessions   = 10_000
)

// demoSession is one browser's state in the demo apps. Its fields are
// guarded by mu.
type demoSession struct {
	mu      sync.Mutex
	id      string
	expires time.Time

	// account is who is signed in, if anyone.
	account *account
	signup  *pendingSignup
	login   *pendingLogin
	orders  []*order
	// notice is shown once, on the next page.
	notice string
	// next is where to go after signing in.
	next string
}

// takeNotice returns the pending notice and clears it.
func (s *demoSession) takeNotice() string {
	n := s.notice
	s.notice = ""
	return n
}

type sessionStore struct {
	mu     sync.Mutex
	m      map[string]*demoSession
	now    func() time.Time
	secure bool
}

func newSessionStore(now func() time.Time, secure bool) *sessionStore {
	return &sessionStore{m: map[string]*demoSession{}, now: now, secure: secure}
}

// get returns r's session, or nil.
func (st *sessionStore) get(r *http.Request) *demoSession {
	ck, err := r.Cookie(demoSessionCookie)
	if err != nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.m[ck.Value]
	if s == nil {
		return nil
	}
	now := st.now()
	if !now.Before(s.expires) {
		delete(st.m, s.id)
		return nil
	}
	s.expires = now.Add(demoSessionTTL)
	return s
}

// ensure returns r's session, starting one (and setting its cookie) if r has
// none.
func (st *sessionStore) ensure(w http.ResponseWriter, r *http.Request) *demoSession {
	if s := st.get(r); s != nil {
		return s
	}
	now := st.now()
	s := &demoSession{id: rand.Text() + rand.Text(), expires: now.Add(demoSessionTTL)}
	st.mu.Lock()
	if len(st.m) >= maxDemoSessions {
		for id, old := range st.m {
			if !now.Before(old.expires) {
				delete(st.m, id)
			}
		}
		// Still full: drop any one rather than grow without bound.
		for id := range st.m {
			if len(st.m) < maxDemoSessions {
				break
			}
			delete(st.m, id)
		}
	}
	st.m[s.id] = s
	st.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: demoSessionCookie, Value: s.id, Path: "/demo/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secureRequest(r, st.secure)})
	return s
}

// end forgets r's session and clears its cookie.
func (st *sessionStore) end(w http.ResponseWriter, r *http.Request) {
	if s := st.get(r); s != nil {
		st.mu.Lock()
		delete(st.m, s.id)
		st.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: demoSessionCookie, Value: "", Path: "/demo/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secureRequest(r, st.secure)})
}
