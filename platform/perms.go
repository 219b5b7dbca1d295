package platform

import (
	"context"
	"fmt"

	"github.com/rosti-paas/rosti/store"
)

// AppPerms lists the users granted one app on its own (not the members of
// its company).
func (p *Platform) AppPerms(_ context.Context, actor store.User, ref AppRef) ([]store.User, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return nil, err
	}
	ids, err := p.store.AppPermUsers(a.ID)
	if err != nil {
		return nil, err
	}
	out := make([]store.User, 0, len(ids))
	for _, id := range ids {
		u, err := p.store.User(id)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// GrantAppPerm lets username manage one app, through every face and over
// SSH, without reaching anything else of the app's company. Only those who
// manage the company (or a superuser) may grant.
func (p *Platform) GrantAppPerm(_ context.Context, actor store.User, ref AppRef, username string) error {
	a, u, err := p.permParties(actor, ref, username)
	if err != nil {
		return err
	}
	if err := p.store.GrantAppPerm(a.ID, u.ID); err != nil {
		return err
	}
	p.log.Info("app permission granted", "app", a.Name, "to", u.Username, "by", actor.Username)
	return nil
}

// RevokeAppPerm takes a grant of GrantAppPerm back.
func (p *Platform) RevokeAppPerm(_ context.Context, actor store.User, ref AppRef, username string) error {
	a, u, err := p.permParties(actor, ref, username)
	if err != nil {
		return err
	}
	if err := p.store.RevokeAppPerm(a.ID, u.ID); err != nil {
		return err
	}
	p.log.Info("app permission revoked", "app", a.Name, "from", u.Username, "by", actor.Username)
	return nil
}

func (p *Platform) permParties(actor store.User, ref AppRef, username string) (store.App, store.User, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return store.App{}, store.User{}, err
	}
	if err := p.authorizeCompany(actor, a.CompanyID); err != nil {
		return store.App{}, store.User{}, fmt.Errorf("only members of the app's company may change who else can use it: %w", ErrForbidden)
	}
	u, err := p.store.UserByName(username)
	if err != nil {
		return store.App{}, store.User{}, FieldError("username", "there is no user %q", username)
	}
	return a, u, nil
}
