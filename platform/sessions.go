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
// lives past sessionMax; uses are written at most every sessionTouch.
const (
	sessionIdle  = 7 * 24 * time.Hour
	sessionMax   = 30 * 24 * time.Hour
	sessionTouch = time.Minute
)

// SignIn checks a username and password and starts a web session. The
// secret is the browser's; the store keeps only its hash.
func (p *Platform) SignIn(_ context.Context, username, password string) (string, store.User, error) {
	u, err := p.checkPassword(username, password)
	if err != nil {
		return "", store.User{}, err
	}
	secret, err := p.startSession(u)
	if err != nil {
		return "", store.User{}, err
	}
	if err := p.store.TouchLogin(u.ID, p.now().UTC()); err != nil {
		return "", store.User{}, err
	}
	return secret, u, nil
}

func (p *Platform) startSession(u store.User) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	secret := hex.EncodeToString(raw)
	now := p.now().UTC()
	err := p.store.CreateSession(store.Session{Hash: tokenHash(secret), UserID: u.ID, Created: now, LastSeen: now, Expires: now.Add(sessionIdle)})
	return secret, err
}

// SessionUser returns the active user a session secret belongs to.
func (p *Platform) SessionUser(_ context.Context, secret string) (store.User, error) {
	fail := fmt.Errorf("not signed in: %w", ErrUnauthorized)
	if secret == "" {
		return store.User{}, fail
	}
	hash := tokenHash(secret)
	se, err := p.store.SessionByHash(hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, fail
	}
	if err != nil {
		return store.User{}, err
	}
	now := p.now().UTC()
	if now.After(se.Expires) || now.Sub(se.Created) > sessionMax {
		_ = p.store.DeleteSession(hash)
		return store.User{}, fail
	}
	u, err := p.store.User(se.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.IsActive) {
		return store.User{}, fail
	}
	if err != nil {
		return store.User{}, err
	}
	if now.Sub(se.LastSeen) > sessionTouch {
		if err := p.store.TouchSession(hash, now, now.Add(sessionIdle)); err != nil {
			p.log.Warn("record session use", "err", err)
		}
	}
	return u, nil
}

// SignOut ends the session with this secret.
func (p *Platform) SignOut(_ context.Context, secret string) error {
	return p.store.DeleteSession(tokenHash(secret))
}

// ChangePassword replaces the actor's own password after checking the
// current one, and ends the actor's other sessions (keepSession is the
// secret of the one in use, "" for none).
func (p *Platform) ChangePassword(ctx context.Context, actor store.User, current, next, keepSession string) error {
	if _, err := p.checkPassword(actor.Username, current); err != nil {
		return FieldError("current_password", "is not your current password")
	}
	if err := p.SetPassword(ctx, actor, actor.Username, next); err != nil {
		return err
	}
	keep := ""
	if keepSession != "" {
		keep = tokenHash(keepSession)
	}
	return p.store.DeleteSessions(actor.ID, keep, p.now().UTC())
}
