package platform

import (
	"context"
	"errors"
	"fmt"
	"math"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rosti-paas/rosti/store"
)

// Login throttling. A password check is a bcrypt hash, tens of
// milliseconds of a core, so a flood of logins is both a guessing attack
// and a way to starve everything else rosti runs (the proxy above all).
// Failed logins are counted per account and per client address in a
// sliding window; past the limit the answer is 429 with Retry-After, and
// no hash is computed. An address an account logged in from recently is
// not held back by that account's failures, so an attacker cannot lock its
// owner out. At most half as many hashes as Go threads (at least one) run
// at once, with a bounded queue in front (two places per address); rosti
// runs them in niced helper processes (Deps.Passwords), off the threads
// that serve requests.
const (
	loginWindow          = 15 * time.Minute
	maxFailuresPerUser   = 10
	maxFailuresPerSource = 30
	trustedSourceFor     = 30 * 24 * time.Hour
	maxQueuedLogins      = 64
	maxQueuedPerSource   = 2
	// loginTokenName names the tokens logins make; a login keeps at most
	// maxLoginTokens of an account's, dropping the least recently used,
	// and one unused for loginTokenIdle no longer authenticates.
	loginTokenName = "login"
	maxLoginTokens = 10
	loginTokenIdle = 30 * 24 * time.Hour
)

// PasswordChecker compares a password with its bcrypt hash.
type PasswordChecker interface {
	Compare(hash, password string) bool
}

// passwordMatches checks an account password, in the PasswordChecker
// when there is one: its work is kept off the threads serving requests.
func (p *Platform) passwordMatches(hash, password string) bool {
	if p.passwords != nil {
		return p.passwords.Compare(hash, password)
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// ErrThrottled is the vocabulary's "too many requests".
var ErrThrottled = errors.New("too many attempts")

// ThrottledError says what was refused and when to try again.
type ThrottledError struct {
	Reason     string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%s; try again in %d seconds", e.Reason, e.RetrySeconds())
}

// RetrySeconds is RetryAfter in whole seconds, at least one.
func (e *ThrottledError) RetrySeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

func (e *ThrottledError) Unwrap() error { return ErrThrottled }

type loginThrottle struct {
	now     func() time.Time
	hashing chan struct{} // a slot per password check running

	mu       sync.Mutex
	queued   int                    // checks running or waiting
	inFlight map[string]int         // of those, per address
	underWay map[string]int         // attempts admitted and not done, per account
	users    map[string][]time.Time // failures in the window, oldest first
	sources  map[string][]time.Time
	trusted  map[string]time.Time // user + "\x00" + source -> last login
	lastScan time.Time
}

func newLoginThrottle(now func() time.Time) *loginThrottle {
	return &loginThrottle{
		now:     now,
		hashing: make(chan struct{}, max(1, goruntime.GOMAXPROCS(0)/2)),
		users:   map[string][]time.Time{}, sources: map[string][]time.Time{}, trusted: map[string]time.Time{},
		inFlight: map[string]int{}, underWay: map[string]int{},
	}
}

// LoginFrom checks a username and password of a client at source (its IP
// address), throttled per account and per address, and hands back a new
// token secret.
func (p *Platform) LoginFrom(ctx context.Context, source, username, password string) (string, error) {
	var token string
	err := p.throttled(source, username, true, func() (attempt, error) {
		var err error
		token, err = p.login(ctx, username, password)
		return attemptDone, err
	})
	if err == nil {
		p.pruneLoginTokens(username)
	}
	return token, err
}

// attempt is how far a credential check got.
type attempt int

const (
	attemptFailed  attempt = iota // wrong password or code: counts against the limits
	attemptHalfway                // right password, a second factor still to come
	attemptDone                   // signed in
)

// throttled runs check, one credential check of username from source,
// within the login limits that every way of signing in shares (API
// logins, web sign-ins and their second factor): over the limits it is
// refused before any work; a check that hashes a password waits for a
// place in the bounded queue. A check that fails with ErrUnauthorized, or
// says attemptFailed, counts as a failure; a completed sign-in clears the
// account's failures and trusts the address for it.
func (p *Platform) throttled(source, username string, hashes bool, check func() (attempt, error)) error {
	th := p.throttle
	user := strings.ToLower(username)
	if err := th.admit(user, source); err != nil {
		return err
	}
	defer th.done(user)
	if hashes {
		if !th.enter(source) {
			return &ThrottledError{Reason: "too many logins in progress from your address or on this server", RetryAfter: time.Second}
		}
		th.hashing <- struct{}{}
		defer th.leave(source)
		defer func() { <-th.hashing }()
	}
	got, err := check()
	switch {
	case errors.Is(err, ErrUnauthorized) || (got == attemptFailed && err != nil):
		th.failed(user, source)
	case err == nil && got == attemptDone:
		th.succeeded(user, source)
	}
	return err
}

// enter takes a place in the queue of password checks: at most
// maxQueuedLogins on the server and maxQueuedPerSource from one address,
// so that one client's flood cannot make everyone else's logins wait.
func (th *loginThrottle) enter(source string) bool {
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.queued >= maxQueuedLogins || th.inFlight[source] >= maxQueuedPerSource {
		return false
	}
	th.queued++
	th.inFlight[source]++
	return true
}

func (th *loginThrottle) leave(source string) {
	th.mu.Lock()
	defer th.mu.Unlock()
	th.queued--
	if th.inFlight[source]--; th.inFlight[source] <= 0 {
		delete(th.inFlight, source)
	}
}

// admit refuses a login attempt over the limits, before any hashing, and
// otherwise counts it as under way for the account until done: attempts
// under way count against the account's limit as the failures they may
// turn out to be, so that a burst of guesses sent at once cannot all pass
// before the first has failed.
func (th *loginThrottle) admit(user, source string) error {
	th.mu.Lock()
	defer th.mu.Unlock()
	now := th.now()
	if wait := overLimit(th.sources[source], maxFailuresPerSource, now); wait > 0 {
		return &ThrottledError{Reason: "too many failed logins from your address", RetryAfter: wait}
	}
	if last, ok := th.trusted[user+"\x00"+source]; !ok || now.Sub(last) >= trustedSourceFor {
		if wait := overLimit(th.users[user], maxFailuresPerUser, now); wait > 0 {
			return &ThrottledError{Reason: "too many failed logins for this account", RetryAfter: wait}
		}
		if len(inWindow(th.users[user], now))+th.underWay[user] >= maxFailuresPerUser {
			return &ThrottledError{Reason: "too many logins under way for this account", RetryAfter: time.Second}
		}
	}
	th.underWay[user]++
	return nil
}

// done ends an attempt admit let through.
func (th *loginThrottle) done(user string) {
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.underWay[user]--; th.underWay[user] <= 0 {
		delete(th.underWay, user)
	}
}

// inWindow is the failures (oldest first) that fall in the window.
func inWindow(failures []time.Time, now time.Time) []time.Time {
	for i, at := range failures {
		if now.Sub(at) < loginWindow {
			return failures[i:]
		}
	}
	return nil
}

// overLimit is how long until failures in the window drop below limit;
// zero when they are below it already.
func overLimit(failures []time.Time, limit int, now time.Time) time.Duration {
	recent := inWindow(failures, now)
	if len(recent) < limit {
		return 0
	}
	return recent[len(recent)-limit].Add(loginWindow).Sub(now)
}

func (th *loginThrottle) failed(user, source string) {
	th.mu.Lock()
	defer th.mu.Unlock()
	now := th.now()
	th.users[user] = append(th.users[user], now)
	th.sources[source] = append(th.sources[source], now)
	th.forgetOldLocked(now)
}

func (th *loginThrottle) succeeded(user, source string) {
	th.mu.Lock()
	defer th.mu.Unlock()
	now := th.now()
	delete(th.users, user)
	th.trusted[user+"\x00"+source] = now
	th.forgetOldLocked(now)
}

// forgetOldLocked drops what no longer counts, at most once a minute, so
// that the maps stay as small as the attack under way.
func (th *loginThrottle) forgetOldLocked(now time.Time) {
	if now.Sub(th.lastScan) < time.Minute {
		return
	}
	th.lastScan = now
	for _, m := range []map[string][]time.Time{th.users, th.sources} {
		for k, times := range m {
			if len(times) == 0 || now.Sub(times[len(times)-1]) >= loginWindow {
				delete(m, k)
			} else if len(times) > maxFailuresPerSource {
				m[k] = times[len(times)-maxFailuresPerSource:]
			}
		}
	}
	for k, at := range th.trusted {
		if now.Sub(at) >= trustedSourceFor {
			delete(th.trusted, k)
		}
	}
}

// pruneLoginTokens keeps the maxLoginTokens most recently used of the
// tokens logins made for username, so that logging in again and again
// does not pile up live tokens.
func (p *Platform) pruneLoginTokens(username string) {
	u, err := p.store.UserByName(username)
	if err != nil {
		return
	}
	tokens, err := p.store.Tokens(u.ID)
	if err != nil {
		p.log.Warn("list tokens", "user", u.Username, "err", err)
		return
	}
	var logins []store.Token
	for _, t := range tokens {
		if t.Name == loginTokenName {
			logins = append(logins, t)
		}
	}
	sort.Slice(logins, func(i, j int) bool { return lastUse(logins[i]).After(lastUse(logins[j])) })
	for i, t := range logins {
		if i >= maxLoginTokens || p.now().Sub(lastUse(t)) >= loginTokenIdle {
			if err := p.store.DeleteToken(u.ID, t.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				p.log.Warn("drop an old login token", "user", u.Username, "err", err)
			}
		}
	}
}

func lastUse(t store.Token) time.Time {
	if t.LastUsed != nil && t.LastUsed.After(t.Created) {
		return *t.LastUsed
	}
	return t.Created
}

// loginTokenExpired says whether a token a login made went unused too long.
func loginTokenExpired(t store.Token, now time.Time) bool {
	return t.Name == loginTokenName && now.Sub(lastUse(t)) >= loginTokenIdle
}
