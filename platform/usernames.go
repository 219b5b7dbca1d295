package platform

import (
	"strings"

	"github.com/rosti-paas/rosti/store"
)

// User names are compared without regard to case (store/usernames.go):
// "Alice" and "alice" are one account, found and logged in under either
// spelling; a second registration of a name that differs only in case is
// refused. The name is kept and shown as it was registered.

// isSelf says whether username names the actor, in any case.
func (p *Platform) isSelf(actor store.User, username string) bool {
	if username == actor.Username {
		return true
	}
	if !strings.EqualFold(username, actor.Username) {
		return false
	}
	// A store from before may hold twins that differ in case only: the
	// spelling must lead to this very account.
	u, err := p.store.UserByName(username)
	return err == nil && u.ID == actor.ID
}

// WarnUsernameClashes logs the accounts an older rosti let differ only in
// case: both keep working, each under its exact name, and other spellings
// lead to the older; the operator may want to merge or rename them.
func (p *Platform) WarnUsernameClashes() {
	clashes, err := p.store.ClashingUsernames()
	if err != nil {
		p.log.Warn("check user names", "err", err)
		return
	}
	for _, names := range clashes {
		p.log.Warn("user names differ only in case; each logs in under its exact name, any other spelling is the oldest account's",
			"users", strings.Join(names, ","))
	}
}
