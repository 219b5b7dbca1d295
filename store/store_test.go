package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "rosti.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustUser(t *testing.T, s *Store, name string) (User, Company) {
	t.Helper()
	u, c, err := s.CreateUser(User{Username: name, IsActive: true, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return u, c
}

func TestOpenMigratesAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rosti.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustUser(t, s, "alice")
	if _, err := Open(path); !errors.Is(err, ErrConflict) {
		t.Fatalf("second open of a store in use: got %v, want ErrConflict", err)
	}
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.UserByName("alice"); err != nil {
		t.Fatalf("user lost across reopen: %v", err)
	}
}

func TestFirstUserIsSuperuserWithDefaultCompany(t *testing.T) {
	s := openTest(t)
	alice, aliceCo := mustUser(t, s, "alice")
	bob, bobCo := mustUser(t, s, "bob")
	if !alice.IsSuperuser || bob.IsSuperuser {
		t.Fatalf("superuser flags: alice %v bob %v", alice.IsSuperuser, bob.IsSuperuser)
	}
	if aliceCo.Name != "alice" || bobCo.Name != "bob" || aliceCo.ID == bobCo.ID {
		t.Fatalf("default companies: %+v %+v", aliceCo, bobCo)
	}
	if role, err := s.Role(alice.ID, aliceCo.ID); err != nil || role != RoleOwner {
		t.Fatalf("alice in her company: %v %v", role, err)
	}
	if _, err := s.Role(bob.ID, aliceCo.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob in alice's company: %v, want ErrNotFound", err)
	}
	if _, _, err := s.CreateUser(User{Username: "alice"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate username: %v", err)
	}
}

func TestAppsUniqueNamesAndDomains(t *testing.T) {
	s := openTest(t)
	_, co := mustUser(t, s, "alice")
	a, err := s.CreateApp(App{CompanyID: co.ID, Name: "web", Domains: []string{"a.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.UID < firstAppUID {
		t.Fatalf("app uid %d is in the host's range", a.UID)
	}
	b, err := s.CreateApp(App{CompanyID: co.ID, Name: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if a.UID == b.UID {
		t.Fatal("two apps share a uid")
	}
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"duplicate name", func() error { _, err := s.CreateApp(App{CompanyID: co.ID, Name: "web"}); return err }, ErrConflict},
		{"domain held by another app", func() error {
			_, err := s.UpdateApp(b.ID, func(x *App) error { x.Domains = []string{"A.example.com"}; return nil })
			return err
		}, ErrConflict},
		{"unknown company", func() error { _, err := s.CreateApp(App{CompanyID: 99, Name: "x"}); return err }, ErrNotFound},
		{"unknown app", func() error { _, err := s.App(99); return err }, ErrNotFound},
		{"rename is ignored", func() error {
			got, err := s.UpdateApp(a.ID, func(x *App) error { x.Name = "other"; return nil })
			if err == nil && got.Name != "web" {
				return errors.New("name changed")
			}
			return err
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if got, err := s.AppByDomain("a.example.com"); err != nil || got.ID != a.ID {
		t.Fatalf("domain index after a refused change: %+v %v", got, err)
	}
	if err := s.DeleteApp(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateApp(App{CompanyID: co.ID, Name: "web", Domains: []string{"a.example.com"}}); err != nil {
		t.Fatalf("name and domain not freed by delete: %v", err)
	}
	apps, err := s.CompanyApps(co.ID)
	if err != nil || len(apps) != 2 {
		t.Fatalf("company apps: %d %v", len(apps), err)
	}
}

func TestTokens(t *testing.T) {
	s := openTest(t)
	alice, _ := mustUser(t, s, "alice")
	bob, _ := mustUser(t, s, "bob")
	tok, err := s.CreateToken(Token{Hash: "h1", UserID: alice.ID, Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateToken(Token{Hash: "h1", UserID: alice.ID}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate hash: %v", err)
	}
	if err := s.DeleteToken(bob.ID, tok.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob revoking alice's token: %v", err)
	}
	if err := s.DeleteToken(alice.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByHash("h1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked token still found: %v", err)
	}
}

func TestBackupIsAUsableStore(t *testing.T) {
	s := openTest(t)
	mustUser(t, s, "alice")
	var buf bytes.Buffer
	if _, err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.UserByName("alice"); err != nil {
		t.Fatalf("backup lacks alice: %v", err)
	}
}

func TestRevisionMovesOnWrites(t *testing.T) {
	s := openTest(t)
	r0 := s.Revision()
	mustUser(t, s, "alice")
	if s.Revision() == r0 {
		t.Fatal("revision did not move on a write")
	}
	r1 := s.Revision()
	if _, err := s.Users(); err != nil {
		t.Fatal(err)
	}
	if s.Revision() != r1 {
		t.Fatal("revision moved on a read")
	}
}

func TestCatalogIDs(t *testing.T) {
	s := openTest(t)
	if err := s.SeedCatalog(1, []Plan{{Name: "a"}, {Name: "b"}}, []Runtime{{Name: "static", Default: true}}); err != nil {
		t.Fatal(err)
	}
	plans, err := s.Plans()
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range plans {
		if p.ID != int64(i+1) {
			t.Fatalf("plan %q has id %d, want %d", p.Name, p.ID, i+1)
		}
	}
	second, err := s.PutRuntime(Runtime{Name: "node", Default: true})
	if err != nil || second.ID != 2 {
		t.Fatalf("new runtime: %+v %v", second, err)
	}
	rts, _ := s.Runtimes()
	if rts[0].Default || !rts[1].Default {
		t.Fatalf("default mark not moved: %+v", rts)
	}
	if err := s.SeedCatalog(1, []Plan{{Name: "c"}}, nil); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Plans(); len(again) != 2 {
		t.Fatalf("seeding twice changed the plans: %+v", again)
	}
}

// A newer seed adds the plans and runtimes an older one lacked, keeps the
// operator's edits and the default runtime they chose.
func TestCatalogSeedUpgrade(t *testing.T) {
	s := openTest(t)
	if err := s.SeedCatalog(1, []Plan{{Name: "start", MemoryMB: 256}}, []Runtime{{Name: "static", Default: true}}); err != nil {
		t.Fatal(err)
	}
	plans, _ := s.Plans()
	plans[0].MemoryMB = 300
	if _, err := s.PutPlan(plans[0]); err != nil {
		t.Fatal(err)
	}
	next := []Plan{{Name: "start", MemoryMB: 256}, {Name: "start+", MemoryMB: 512}}
	if err := s.SeedCatalog(2, next, []Runtime{{Name: "binary", Default: true}, {Name: "static"}}); err != nil {
		t.Fatal(err)
	}
	plans, _ = s.Plans()
	if len(plans) != 2 || plans[0].MemoryMB != 300 || plans[1].Name != "start+" {
		t.Fatalf("plans after the new seed: %+v", plans)
	}
	rts, _ := s.Runtimes()
	if len(rts) != 2 || !rts[0].Default || rts[1].Name != "binary" || rts[1].Default {
		t.Fatalf("runtimes after the new seed: %+v", rts)
	}
	if err := s.SeedCatalog(2, []Plan{{Name: "pro"}}, nil); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Plans(); len(again) != 2 {
		t.Fatalf("the same seed twice changed the plans: %+v", again)
	}
}
