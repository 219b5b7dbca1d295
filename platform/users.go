package platform

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rosti-paas/rosti/store"
)

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
