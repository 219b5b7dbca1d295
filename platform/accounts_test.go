package platform

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rosti-paas/rosti/store"
)

// TestCancelKeepsNoCompanyOrphaned: the last member of a company with apps
// cannot cancel the account; with another member, the apps are theirs.
func TestCancelKeepsNoCompanyOrphaned(t *testing.T) {
	p := newTestPlatform(t)
	ctx := context.Background()
	if _, err := p.CreateUser(ctx, Operator(), NewUser{Username: "root", Password: "password-root"}); err != nil {
		t.Fatal(err)
	}
	a := newApp(t, p) // alice's app "web"
	alice, err := p.store.UserByName("alice")
	if err != nil {
		t.Fatal(err)
	}
	err = p.CancelAccount(ctx, alice)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "last member") || !strings.Contains(err.Error(), "web") {
		t.Fatalf("cancelling the last member of a company with apps: %v", err)
	}
	bob, err := p.CreateUser(ctx, Operator(), NewUser{Username: "bob", Password: "password-bob"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.store.SetMember(a.CompanyID, bob.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	if err := p.CancelAccount(ctx, alice); err != nil {
		t.Fatalf("cancelling with another member left: %v", err)
	}
	if _, err := p.App(ctx, bob, AppByID(a.CompanyID, a.ID)); err != nil {
		t.Fatalf("the remaining member cannot manage the app: %v", err)
	}
	// A user whose companies have no apps cancels freely.
	carol, err := p.CreateUser(ctx, Operator(), NewUser{Username: "carol", Password: "password-carol"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CancelAccount(ctx, carol); err != nil {
		t.Fatalf("cancelling an account without apps: %v", err)
	}
}
