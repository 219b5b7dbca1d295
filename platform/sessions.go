package platform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/rosti-paas/rosti/store"
)

// Session lifetimes: a session not used for sessionIdle ends, and none
// lives past sessionMax; uses are written at most every sessionTouch. A
// sign-in waiting for its second factor lasts codeWait and allows
// maxWrongCodes wrong codes before the password must be given again.
const (
	sessionIdle   = 7 * 24 * time.Hour
	sessionMax    = 30 * 24 * time.Hour
	sessionTouch  = time.Minute
	codeWait      = 5 * time.Minute
	maxWrongCodes = 5
)

// SignInResult is a started web session: its secret (the browser's; the
// store keeps only its hash) and whether it still waits for a code from
// the user's authenticator (SignInCode) before it signs anybody in.
type SignInResult struct {
	Secret    string
	User      store.User
	NeedsCode bool
}

// SignIn checks a username and password of a client at source (its IP
// address) and starts a web session, within the same limits as API logins.
func (p *Platform) SignIn(_ context.Context, source, username, password string) (SignInResult, error) {
	var res SignInResult
	err := p.throttled(source, username, true, func() (attempt, error) {
		var err error
		if res, err = p.signIn(username, password); res.NeedsCode {
			return attemptHalfway, err
		}
		return attemptDone, err
	})
	return res, err
}

func (p *Platform) signIn(username, password string) (SignInResult, error) {
	u, err := p.checkPassword(username, password)
	if err != nil {
		return SignInResult{}, err
	}
	needsCode, err := p.twoFactorOn(u.ID)
	if err != nil {
		return SignInResult{}, err
	}
	secret, err := p.startSession(u, needsCode)
	if err != nil {
		return SignInResult{}, err
	}
	if !needsCode {
		if err := p.store.TouchLogin(u.ID, p.now().UTC()); err != nil {
			return SignInResult{}, err
		}
	}
	return SignInResult{Secret: secret, User: u, NeedsCode: needsCode}, nil
}

func (p *Platform) startSession(u store.User, awaitingCode bool) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	secret := hex.EncodeToString(raw)
	now := p.now().UTC()
	expires := now.Add(sessionIdle)
	if awaitingCode {
		expires = now.Add(codeWait)
	}
	err := p.store.CreateSession(store.Session{Hash: tokenHash(secret), UserID: u.ID, Created: now, LastSeen: now, Expires: expires, AwaitingCode: awaitingCode})
	return secret, err
}

var errNotSignedIn = fmt.Errorf("not signed in: %w", ErrUnauthorized)

// session finds a live session by its secret and its active user.
func (p *Platform) session(secret string) (store.Session, store.User, error) {
	if secret == "" {
		return store.Session{}, store.User{}, errNotSignedIn
	}
	hash := tokenHash(secret)
	se, err := p.store.SessionByHash(hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, store.User{}, errNotSignedIn
	}
	if err != nil {
		return store.Session{}, store.User{}, err
	}
	now := p.now().UTC()
	if now.After(se.Expires) || now.Sub(se.Created) > sessionMax {
		_ = p.store.DeleteSession(hash)
		return store.Session{}, store.User{}, errNotSignedIn
	}
	u, err := p.store.User(se.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.IsActive) {
		return store.Session{}, store.User{}, errNotSignedIn
	}
	return se, u, err
}

// SessionUser returns the active user a session secret belongs to.
func (p *Platform) SessionUser(_ context.Context, secret string) (store.User, error) {
	se, u, err := p.session(secret)
	if err != nil {
		return store.User{}, err
	}
	if se.AwaitingCode {
		return store.User{}, errNotSignedIn
	}
	if now := p.now().UTC(); now.Sub(se.LastSeen) > sessionTouch {
		if err := p.store.UpdateSession(se.Hash, func(se *store.Session) { se.LastSeen, se.Expires = now, now.Add(sessionIdle) }); err != nil {
			p.log.Warn("record session use", "err", err)
		}
	}
	return u, nil
}

// AwaitingCode tells whether secret is a sign-in waiting for its second
// factor, and for whom.
func (p *Platform) AwaitingCode(_ context.Context, secret string) (store.User, bool) {
	se, u, err := p.session(secret)
	if err != nil || !se.AwaitingCode {
		return store.User{}, false
	}
	return u, true
}

// SignInCode completes a sign-in that waits for its second factor, with a
// code of the user's authenticator or one of their recovery codes (which
// is used up). Wrong codes count against the account's and the address's
// login limits, and after maxWrongCodes of them the sign-in ends.
func (p *Platform) SignInCode(_ context.Context, source, secret, code string) (store.User, error) {
	se, u, err := p.session(secret)
	if err != nil {
		return store.User{}, err
	}
	if !se.AwaitingCode {
		return store.User{}, fmt.Errorf("this sign-in waits for no code: %w", store.ErrInvalid)
	}
	err = p.throttled(source, u.Username, false, func() (attempt, error) {
		ok, err := p.useSecondFactor(u.ID, code)
		if err != nil {
			return attemptHalfway, err
		}
		if !ok {
			return attemptFailed, p.wrongCode(se)
		}
		return attemptDone, p.completeSignIn(se, u)
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

func (p *Platform) wrongCode(se store.Session) error {
	wrong := se.WrongCodes + 1
	if wrong >= maxWrongCodes {
		_ = p.store.DeleteSession(se.Hash)
		return fmt.Errorf("too many wrong codes; sign in again: %w", ErrUnauthorized)
	}
	if err := p.store.UpdateSession(se.Hash, func(se *store.Session) { se.WrongCodes = wrong }); err != nil {
		return err
	}
	return FieldError("code", "is not a current code of your authenticator nor an unused recovery code")
}

func (p *Platform) completeSignIn(se store.Session, u store.User) error {
	now := p.now().UTC()
	if err := p.store.UpdateSession(se.Hash, func(se *store.Session) {
		se.AwaitingCode, se.WrongCodes, se.LastSeen, se.Expires = false, 0, now, now.Add(sessionIdle)
	}); err != nil {
		return err
	}
	if err := p.store.TouchLogin(u.ID, now); err != nil {
		return err
	}
	p.log.Info("signed in with a second factor", "user", u.Username)
	return nil
}

// SignOut ends the session with this secret.
func (p *Platform) SignOut(_ context.Context, secret string) error {
	return p.store.DeleteSession(tokenHash(secret))
}

// ChangePassword sets a new password: the actor's own (username "" or its
// own) after checking the current one, or anybody's, without it, for a
// superuser. The account's other web sessions end; keepSession is the
// secret of the one in use ("" for none).
func (p *Platform) ChangePassword(ctx context.Context, actor store.User, username, current, next, keepSession string) error {
	if username == "" || username == actor.Username {
		if _, err := p.checkPassword(actor.Username, current); err != nil {
			return FieldError("current_password", "is not your current password")
		}
		username = actor.Username
	}
	if err := p.SetPassword(ctx, actor, username, next); err != nil {
		return err
	}
	u, err := p.store.UserByName(username)
	if err != nil {
		return err
	}
	keep := ""
	if keepSession != "" {
		keep = tokenHash(keepSession)
	}
	return p.store.DeleteSessions(u.ID, keep, p.now().UTC())
}
