package platform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rosti-paas/rosti/store"
)

// Member is a user's membership of a company, with the user's name.
type Member struct {
	UserID   int64
	Username string
	Role     store.Role
}

// Members lists a company's members, by username.
func (p *Platform) Members(_ context.Context, actor store.User, companyID int64) ([]Member, error) {
	if err := p.authorizeCompany(actor, companyID); err != nil {
		return nil, err
	}
	ms, err := p.store.Members(companyID)
	if err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		u, err := p.store.User(m.UserID)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{UserID: u.ID, Username: u.Username, Role: m.Role})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Username, b.Username) })
	return out, nil
}

// authorizeMembers lets a company's owners and admins (and superusers)
// change who is a member.
func (p *Platform) authorizeMembers(actor store.User, companyID int64) error {
	if err := p.authorizeCompany(actor, companyID); err != nil {
		return err
	}
	if actor.IsSuperuser {
		return nil
	}
	role, err := p.store.Role(actor.ID, companyID)
	if err != nil {
		return err
	}
	if role != store.RoleOwner && role != store.RoleAdmin {
		return fmt.Errorf("only the company's owners and admins may change its members: %w", ErrForbidden)
	}
	return nil
}

// AddMember makes an existing user, by name, a member of the company.
func (p *Platform) AddMember(_ context.Context, actor store.User, companyID int64, username string) (Member, error) {
	if err := p.authorizeMembers(actor, companyID); err != nil {
		return Member{}, err
	}
	username = strings.TrimSpace(username)
	if username == "" {
		return Member{}, FieldError("username", "this field is required")
	}
	u, err := p.store.UserByName(username)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.IsActive) {
		return Member{}, FieldError("username", "there is no user named %q", username)
	}
	if err != nil {
		return Member{}, err
	}
	if _, err := p.store.Role(u.ID, companyID); err == nil {
		return Member{}, FieldError("username", "%s is already a member", username)
	}
	if err := p.store.SetMember(companyID, u.ID, store.RoleMember); err != nil {
		return Member{}, err
	}
	p.log.Info("member added", "company", companyID, "member", u.Username, "user", actor.Username)
	return Member{UserID: u.ID, Username: u.Username, Role: store.RoleMember}, nil
}

// RemoveMember takes a user out of the company: an owner or admin may
// remove anybody, a member only themself; the last member stays.
func (p *Platform) RemoveMember(_ context.Context, actor store.User, companyID, userID int64) error {
	if actor.ID != userID || actor.IsSuperuser {
		if err := p.authorizeMembers(actor, companyID); err != nil {
			return err
		}
	} else if err := p.authorizeCompany(actor, companyID); err != nil {
		return err
	}
	if err := p.store.RemoveMember(companyID, userID); err != nil {
		return err
	}
	p.log.Info("member removed", "company", companyID, "member_id", userID, "user", actor.Username)
	return nil
}
