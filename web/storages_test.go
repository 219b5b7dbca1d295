package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sync"
	"testing"

	"github.com/rosti-paas/rosti/internal/facetest"
	"github.com/rosti-paas/rosti/platform"
)

// fakeDatabases stands in for the database servers, which the end-to-end
// tests of storages run for real.
type fakeDatabases struct {
	mu        sync.Mutex
	passwords map[string]string
}

func (f *fakeDatabases) Create(_ context.Context, _, name, password string, _ int) (string, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passwords[name] = password
	return "db.test", 5432, nil
}

func (f *fakeDatabases) SetPassword(_ context.Context, _, name, password string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passwords[name] = password
	return nil
}

func (f *fakeDatabases) Size(context.Context, string, string) (int64, error) { return 8 << 20, nil }

func (f *fakeDatabases) Drop(_ context.Context, _, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.passwords, name)
	return nil
}

func TestStoragesPage(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dbs := &fakeDatabases{passwords: map[string]string{}}
	p, st := facetest.Platform(t, platform.Config{AppsDomain: "apps.test", SSHHost: "host.test", SSHPort: 2222}, platform.Deps{Log: log, Databases: dbs})
	srv := httptest.NewServer(New(p, log))
	t.Cleanup(srv.Close)
	ui := &testUI{t: t, st: st, p: p, srv: srv}

	alice, apps := ui.signUp("alice")
	bob, _ := ui.signUp("bob")
	page := apps + "storages"
	alice.get(page).expect(t, 200, "No databases yet")
	alice.post(page, url.Values{"type": {"oracle"}, "password": {"a-long-db-password"}}).expect(t, http.StatusBadRequest,
		`<span id="type-err"><span class="err" role="alert">must be mariadb or pgsql`)
	created := alice.post(page, url.Values{"type": {"pgsql"}, "password": {"a-long-db-password"}, "note": {"blog"}}).expect(t, http.StatusSeeOther)
	list := alice.get(created.location).expect(t, 200, "created.", "db.test:5432", "blog", "pgsql", "8.0 MB")
	m := regexp.MustCompile(`/storages/(\d+)/delete`).FindStringSubmatch(list.body)
	name := regexp.MustCompile(`<strong>(c\d+_s\d+)</strong>`).FindStringSubmatch(list.body)
	if m == nil || name == nil {
		t.Fatalf("no database listed:\n%s", list.body)
	}
	bob.get(page).expect(t, http.StatusNotFound)
	bob.post(page+"/"+m[1]+"/delete", url.Values{"confirm_name": {name[1]}}).expect(t, http.StatusNotFound)

	alice.post(page+"/"+m[1]+"/password", url.Values{"password": {"another-long-password"}}).expect(t, http.StatusSeeOther)
	if dbs.passwords[name[1]] != "another-long-password" {
		t.Error("the new password did not reach the database server")
	}
	alice.post(page+"/"+m[1]+"/delete", url.Values{"confirm_name": {"nope"}}).expect(t, http.StatusBadRequest, "Type the database")
	alice.post(page+"/"+m[1]+"/delete", url.Values{"confirm_name": {name[1]}}).expect(t, http.StatusSeeOther)
	alice.get(page).expect(t, 200, "No databases yet")
	if len(dbs.passwords) != 0 {
		t.Errorf("databases left: %v", dbs.passwords)
	}
}

func TestStoragesWithoutDatabaseServers(t *testing.T) {
	ui := newTestUI(t, platform.RegistrationOpen)
	alice, apps := ui.signUp("alice")
	alice.get(apps+"storages").expect(t, 200, "No databases yet")
	alice.post(apps+"storages", url.Values{"type": {"pgsql"}, "password": {"a-long-db-password"}}).
		expect(t, http.StatusBadRequest, "storages are not enabled on this server")
}
