package store

import (
	"errors"
	"fmt"
	"testing"
)

func TestAppPermsFollowAppsAndUsers(t *testing.T) {
	s := openTest(t)
	_, aliceCo := mustUser(t, s, "alice")
	bob, bobCo := mustUser(t, s, "bob")
	shared, err := s.CreateApp(App{CompanyID: aliceCo.ID, Name: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	own, err := s.CreateApp(App{CompanyID: bobCo.ID, Name: "own"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.GrantAppPerm(shared.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.GrantAppPerm(shared.ID, bob.ID); err != nil {
		t.Fatalf("granting twice: %v", err)
	}
	if ok, err := s.HasAppPerm(shared.ID, bob.ID); !ok || err != nil {
		t.Fatalf("HasAppPerm: %v %v", ok, err)
	}
	if ids, _ := s.AppIDsVisibleTo(bob.ID, []int64{bobCo.ID}, false); fmt.Sprint(ids) != fmt.Sprint([]int64{shared.ID, own.ID}) {
		t.Fatalf("bob sees %v", ids)
	}
	if err := s.GrantAppPerm(999, bob.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a missing app: %v", err)
	}
	if err := s.RevokeAppPerm(shared.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAppPerm(shared.ID, bob.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	// Deleting the app or the user takes the grants with it.
	if err := s.GrantAppPerm(shared.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(bob.ID); err != nil {
		t.Fatal(err)
	}
	if users, _ := s.AppPermUsers(shared.ID); len(users) != 0 {
		t.Fatalf("grants of a deleted user: %v", users)
	}
	carol, _ := mustUser(t, s, "carol")
	if err := s.GrantAppPerm(shared.ID, carol.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteApp(shared.ID); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.AppIDsVisibleTo(carol.ID, nil, false); len(ids) != 0 {
		t.Fatalf("grants of a deleted app: %v", ids)
	}
}

func TestCertNamesAreUniquePerCompany(t *testing.T) {
	s := openTest(t)
	_, a := mustUser(t, s, "alice")
	_, b := mustUser(t, s, "bob")
	tests := []struct {
		name    string
		company int64
		cert    string
		err     error
	}{
		{"first", a.ID, "shop", nil},
		{"same name, same company", a.ID, "shop", ErrConflict},
		{"same name, another company", b.ID, "shop", nil},
		{"a missing company", 99, "x", ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.CreateCert(Cert{CompanyID: tc.company, Name: tc.cert}); !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
	c, err := s.CertByName(a.ID, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateCert(c.ID, func(c *Cert) error { c.Domains = []string{"www.shop.test"}; c.Name = "renamed"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CertByName(a.ID, "shop"); err != nil || got.Domains[0] != "www.shop.test" {
		t.Fatalf("after update: %+v %v", got, err)
	}
	if all, _ := s.Certs(0); len(all) != 2 {
		t.Fatalf("all certs: %d", len(all))
	}
	if err := s.DeleteCert(c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CertByName(a.ID, "shop"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}
