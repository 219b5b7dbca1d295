package rostiv1_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// fakeDatabases stands in for the database servers in the API's tests; the
// real ones are tested in dbserver and end to end.
type fakeDatabases struct {
	mu        sync.Mutex
	passwords map[string]string // database -> password
	down      bool              // the server does not answer
}

func newFakeDatabases() *fakeDatabases { return &fakeDatabases{passwords: map[string]string{}} }

func (f *fakeDatabases) Create(_ context.Context, typ, name, password string, _ int) (string, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return "", 0, fmt.Errorf("%s does not answer", typ)
	}
	f.passwords[name] = password
	return "", map[string]int{"pgsql": 5432, "mariadb": 3306}[typ], nil
}

func (f *fakeDatabases) SetPassword(_ context.Context, _, name, password string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.passwords[name]; !ok {
		return fmt.Errorf("no database %s", name)
	}
	f.passwords[name] = password
	return nil
}

func (f *fakeDatabases) Size(_ context.Context, _, name string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.passwords[name]; !ok {
		return 0, fmt.Errorf("no database %s", name)
	}
	return 8192, nil
}

func (f *fakeDatabases) Drop(_ context.Context, _, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.passwords, name)
	return nil
}

func (f *fakeDatabases) password(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.passwords[name]
}

func (f *fakeDatabases) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *fakeDatabases) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.passwords)
}

type storageReply struct {
	ID       int64   `json:"id"`
	Type     string  `json:"type"`
	Name     string  `json:"name"`
	Username string  `json:"username"`
	Host     string  `json:"host"`
	Port     int     `json:"port"`
	Note     string  `json:"note"`
	Size     *int64  `json:"size"`
	Password *string `json:"password"`
}

func TestStorages(t *testing.T) {
	a := newTestAPI(t)
	base := fmt.Sprintf("/api/v1/%d/storages/", a.aliceCo)
	r := a.do(t, a.alice, "POST", base, `{"type":"pgsql","password":"s3cret-db-pw","note":"main"}`)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "s3cret-db-pw") {
		t.Fatalf("the password is echoed: %s", r.body)
	}
	var pg storageReply
	r.json(t, &pg)
	if pg.Type != "pgsql" || pg.Name == "" || pg.Username != pg.Name || pg.Host != "127.0.0.1" || pg.Port != 5432 ||
		pg.Note != "main" || pg.Size == nil || *pg.Size != 8192 || pg.Password != nil {
		t.Fatalf("created: %s", r.body)
	}
	r = a.do(t, a.alice, "POST", base, `{"storage_type":"mariadb","password":"another-pw-1"}`)
	var my storageReply
	r.json(t, &my)
	if r.status != 200 || my.Type != "mariadb" || my.Name == pg.Name {
		t.Fatalf("create with storage_type: %d %s", r.status, r.body)
	}
	var list []storageReply
	a.do(t, a.alice, "GET", base, "").json(t, &list)
	if len(list) != 2 || list[0].ID != pg.ID || list[1].ID != my.ID {
		t.Fatalf("list: %+v", list)
	}

	one := fmt.Sprintf("%s%d/", base, pg.ID)
	if r := a.do(t, a.alice, "PATCH", one, `{"note":"renamed"}`); r.status != 200 || !strings.Contains(string(r.body), `"note":"renamed"`) {
		t.Fatalf("patch the note: %d %s", r.status, r.body)
	}
	if r := a.do(t, a.alice, "PUT", one, `{"password":"changed-pw-1"}`); r.status != 200 {
		t.Fatalf("put a password: %d %s", r.status, r.body)
	}
	a.do(t, a.alice, "GET", one, "").json(t, &pg)
	if pg.Note != "renamed" {
		t.Fatalf("after the updates: %+v", pg)
	}

	tests := []struct {
		name, method, path, body string
		status                   int
		field                    string
		asBob                    bool
	}{
		{"unknown type", "POST", base, `{"type":"mongodb","password":"long-enough-pw"}`, 400, "type", false},
		{"no type", "POST", base, `{"password":"long-enough-pw"}`, 400, "type", false},
		{"type and storage_type differ", "POST", base, `{"type":"pgsql","storage_type":"mariadb","password":"long-enough-pw"}`, 400, "storage_type", false},
		{"weak password", "POST", base, `{"type":"pgsql","password":"short"}`, 400, "password", false},
		{"no password", "POST", base, `{"type":"pgsql"}`, 400, "password", false},
		{"password not ASCII", "POST", base, `{"type":"pgsql","password":"heslo-žluťoučký"}`, 400, "password", false},
		{"password of the wrong type", "POST", base, `{"type":"pgsql","password":12345678}`, 400, "password", false},
		{"1 MB note", "POST", base, `{"type":"pgsql","password":"long-enough-pw","note":"` + strings.Repeat("n", 1_000_000) + `"}`, 400, "note", false},
		// alice, the first account, is a superuser who may manage any
		// company; bob may not manage hers.
		{"another company", "POST", base, `{"type":"pgsql","password":"long-enough-pw"}`, 404, "", true},
		{"a company that does not exist", "POST", "/api/v1/99999/storages/", `{"type":"pgsql","password":"long-enough-pw"}`, 404, "", false},
		{"put without a password", "PUT", one, `{"note":"x"}`, 400, "password", false},
		{"patch with nothing", "PATCH", one, `{}`, 400, "password", false},
		{"patch a weak password", "PATCH", one, `{"password":"short"}`, 400, "password", false},
		{"change the type", "PATCH", one, `{"type":"mariadb"}`, 400, "type", false},
		{"a storage that does not exist", "GET", base + "99999/", "", 404, "", false},
		{"a storage id that is no number", "GET", base + "abc/", "", 404, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			who := a.alice
			if tc.asBob {
				who = a.bob
			}
			r := a.do(t, who, tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.status, tc.status, r.body)
			}
			if tc.field != "" && !strings.Contains(string(r.body), `"`+tc.field+`":[`) {
				t.Fatalf("the error does not name %s: %.300s", tc.field, r.body)
			}
		})
	}
	a.dbs.setDown(true)
	r = a.do(t, a.alice, "POST", base, `{"type":"pgsql","password":"long-enough-pw"}`)
	a.dbs.setDown(false)
	if r.status != 500 || strings.Contains(string(r.body), "does not answer") {
		t.Fatalf("a server that does not answer: %d %s, want 500 with a request id only", r.status, r.body)
	}
	a.do(t, a.alice, "GET", base, "").json(t, &list)
	if len(list) != 2 || a.dbs.count() != 2 {
		t.Fatalf("bad input or a failed create left something: %d storages, %d databases", len(list), a.dbs.count())
	}

	if r := a.do(t, a.alice, "DELETE", one, ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := a.do(t, a.alice, "GET", one, ""); r.status != 404 {
		t.Fatalf("read after delete: %d", r.status)
	}
	if a.dbs.count() != 1 {
		t.Fatalf("%d databases left, want 1", a.dbs.count())
	}
}
