package platform

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rosti-paas/rosti/store"
)

func TestUsernamesIgnoreCase(t *testing.T) {
	p := newTestPlatform(t)
	ctx := context.Background()
	if _, err := p.CreateUser(ctx, Operator(), NewUser{Username: "root", Password: "password-root"}); err != nil {
		t.Fatal(err)
	}
	alice, err := p.CreateUser(ctx, Operator(), NewUser{Username: "Alice", Password: "password-alice"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("registering another spelling is refused", func(t *testing.T) {
		_, err := p.CreateUser(ctx, Operator(), NewUser{Username: "alice", Password: "password-other"})
		var v *ValidationError
		if !errors.As(err, &v) || !errors.Is(err, store.ErrInvalid) || len(v.Fields["username"]) != 1 {
			t.Fatalf("got %v, want a validation error on username", err)
		}
		if msg := v.Fields["username"][0]; !strings.Contains(msg, "already exists: Alice") || !strings.Contains(msg, "case") {
			t.Fatalf("message %q does not name the account that holds the name", msg)
		}
	})
	for _, spelling := range []string{"Alice", "alice", "ALICE"} {
		t.Run("log in as "+spelling, func(t *testing.T) {
			token, err := p.LoginFrom(ctx, "192.0.2.1", spelling, "password-alice")
			if err != nil {
				t.Fatal(err)
			}
			u, err := p.Authenticate(ctx, token)
			if err != nil || u.ID != alice.ID || u.Username != "Alice" {
				t.Fatalf("token of %+v, %v; want Alice", u, err)
			}
		})
		t.Run("own account as "+spelling, func(t *testing.T) {
			if u, err := p.User(ctx, alice, spelling); err != nil || u.ID != alice.ID {
				t.Fatalf("got %+v, %v", u, err)
			}
		})
	}
	t.Run("another spelling of another user is not oneself", func(t *testing.T) {
		bob, err := p.CreateUser(ctx, Operator(), NewUser{Username: "bob", Password: "password-bob"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.User(ctx, bob, "ALICE"); !errors.Is(err, ErrForbidden) {
			t.Fatalf("bob reading ALICE: %v, want ErrForbidden", err)
		}
		if err := p.SetPassword(ctx, bob, "aLiCe", "password-taken"); !errors.Is(err, ErrForbidden) {
			t.Fatalf("bob setting aLiCe's password: %v, want ErrForbidden", err)
		}
	})
}
