package platform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rosti-paas/rosti/store"
)

// DefaultCompany is the company the faces without companies (Drycc, tsuru)
// create a user's apps in: the first one the user owns, else the first it
// belongs to.
func (p *Platform) DefaultCompany(_ context.Context, actor store.User) (int64, error) {
	cs, err := p.store.CompaniesOf(actor.ID)
	if err != nil {
		return 0, err
	}
	for _, c := range cs {
		if r, err := p.store.Role(actor.ID, c.ID); err == nil && r == store.RoleOwner {
			return c.ID, nil
		}
	}
	if len(cs) == 0 {
		return 0, fmt.Errorf("you belong to no company, so you cannot own apps: %w", store.ErrInvalid)
	}
	return cs[0].ID, nil
}

// VisibleApps is one page (from offset, at most limit) of the apps actor
// may manage, by id: those of its companies and those granted to it; every
// app for a superuser. total counts them all.
func (p *Platform) VisibleApps(_ context.Context, actor store.User, offset, limit int) (page []store.App, total int, err error) {
	if !actor.IsActive {
		return nil, 0, fmt.Errorf("inactive account: %w", ErrUnauthorized)
	}
	var companies []int64
	if !actor.IsSuperuser {
		cs, err := p.store.CompaniesOf(actor.ID)
		if err != nil {
			return nil, 0, err
		}
		for _, c := range cs {
			companies = append(companies, c.ID)
		}
	}
	ids, err := p.store.AppIDsVisibleTo(actor.ID, companies, actor.IsSuperuser)
	if err != nil {
		return nil, 0, err
	}
	total = len(ids)
	offset = min(max(offset, 0), total)
	end := total
	if limit > 0 {
		end = min(offset+limit, total)
	}
	page, err = p.store.AppsByID(ids[offset:end])
	return page, total, err
}

// TransferApp gives an app to another user: it moves to that user's
// default company, whose members manage it from then on.
func (p *Platform) TransferApp(ctx context.Context, actor store.User, ref AppRef, username string) (store.App, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return store.App{}, err
	}
	if err := p.authorizeCompany(actor, a.CompanyID); err != nil {
		return store.App{}, fmt.Errorf("only members of the app's company may give it away: %w", ErrForbidden)
	}
	to, err := p.store.UserByName(username)
	if err != nil {
		return store.App{}, FieldError("owner", "there is no user %q", username)
	}
	company, err := p.DefaultCompany(ctx, to)
	if err != nil {
		return store.App{}, err
	}
	moved, err := p.store.MoveApp(a.ID, company, to.ID)
	if err != nil {
		return store.App{}, err
	}
	p.log.Info("app transferred", "app", a.Name, "to", to.Username, "company", company, "by", actor.Username)
	p.changed(a.ID)
	return moved, nil
}

// Users lists every account, for an administrator.
func (p *Platform) Users(_ context.Context, actor store.User) ([]store.User, error) {
	if err := requireSuperuser(actor); err != nil {
		return nil, err
	}
	us, err := p.store.Users()
	slices.SortFunc(us, func(a, b store.User) int { return strings.Compare(a.Username, b.Username) })
	return us, err
}

// SetUserFlags makes a user a superuser or not, active or disabled (nil
// leaves a flag as it is). A disabled user's tokens and sessions stop
// working at once. Administrators cannot demote or disable themselves, so
// that a server keeps one who can undo it.
func (p *Platform) SetUserFlags(_ context.Context, actor store.User, username string, superuser, active *bool) (store.User, error) {
	if err := requireSuperuser(actor); err != nil {
		return store.User{}, err
	}
	u, err := p.store.UserByName(username)
	if err != nil {
		return store.User{}, err
	}
	if u.ID == actor.ID && ((superuser != nil && !*superuser) || (active != nil && !*active)) {
		return store.User{}, fmt.Errorf("you cannot take away your own administrator rights or disable yourself: %w", ErrForbidden)
	}
	u, err = p.store.UpdateUser(u.ID, func(u *store.User) error {
		if superuser != nil {
			u.IsSuperuser = *superuser
		}
		if active != nil {
			u.IsActive = *active
		}
		return nil
	})
	if err != nil {
		return store.User{}, err
	}
	p.log.Info("user changed", "user", u.Username, "superuser", u.IsSuperuser, "active", u.IsActive, "by", actor.Username)
	return u, nil
}

// User returns an account by name: one's own, or anybody's for a superuser.
func (p *Platform) User(_ context.Context, actor store.User, username string) (store.User, error) {
	if !p.isSelf(actor, username) {
		if err := requireSuperuser(actor); err != nil {
			return store.User{}, err
		}
	}
	return p.store.UserByName(username)
}

// Admins lists the superusers; any user may see who they are.
func (p *Platform) Admins(_ context.Context, actor store.User) ([]store.User, error) {
	if !actor.IsActive {
		return nil, fmt.Errorf("inactive account: %w", ErrUnauthorized)
	}
	all, err := p.store.Users()
	if err != nil {
		return nil, err
	}
	var out []store.User
	for _, u := range all {
		if u.IsSuperuser {
			out = append(out, u)
		}
	}
	return out, nil
}

// SetSuperuser grants or takes back administrative privileges; for
// superusers. The last active superuser cannot be demoted, or nobody could
// administer the server.
func (p *Platform) SetSuperuser(ctx context.Context, actor store.User, username string, superuser bool) error {
	if err := requireSuperuser(actor); err != nil {
		return err
	}
	u, err := p.store.UserByName(username)
	if err != nil {
		return FieldError("username", "there is no user %q", username)
	}
	if !superuser && u.IsSuperuser {
		admins, err := p.Admins(ctx, actor)
		if err != nil {
			return err
		}
		if len(admins) <= 1 {
			return fmt.Errorf("%s is the only administrator; make another one first: %w", username, store.ErrConflict)
		}
	}
	if !superuser && !u.IsSuperuser {
		return fmt.Errorf("%s is not an administrator: %w", username, store.ErrNotFound)
	}
	if _, err := p.store.UpdateUser(u.ID, func(u *store.User) error { u.IsSuperuser = superuser; return nil }); err != nil {
		return err
	}
	p.log.Info("administrator privileges changed", "user", username, "superuser", superuser, "by", actor.Username)
	return nil
}

// Usernames names the owners of apps (or any users) by id, for faces that
// show an owner's name.
func (p *Platform) Usernames(_ context.Context, actor store.User, ids []int64) (map[int64]string, error) {
	if !actor.IsActive {
		return nil, fmt.Errorf("inactive account: %w", ErrUnauthorized)
	}
	out := make(map[int64]string, len(ids))
	for _, id := range ids {
		if _, done := out[id]; done {
			continue
		}
		u, err := p.store.User(id)
		if errors.Is(err, store.ErrNotFound) {
			out[id] = ""
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = u.Username
	}
	return out, nil
}

// RegenerateToken revokes every token of username (the actor's own, or
// anybody's for a superuser) and returns a new one.
func (p *Platform) RegenerateToken(ctx context.Context, actor store.User, username string) (string, error) {
	u, err := p.User(ctx, actor, username)
	if err != nil {
		return "", err
	}
	old, err := p.store.Tokens(u.ID)
	if err != nil {
		return "", err
	}
	secret, _, err := p.CreateToken(ctx, u, loginTokenName)
	if err != nil {
		return "", err
	}
	for _, t := range old {
		if err := p.store.DeleteToken(u.ID, t.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	p.log.Info("tokens regenerated", "user", u.Username, "by", actor.Username)
	return secret, nil
}
