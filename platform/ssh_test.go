package platform

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

func newTestPlatform(t *testing.T) *Platform {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "rosti.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := New(Config{DataDir: dir, AppsDomain: "apps.test"}, Deps{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := p.SeedCatalog(); err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t *testing.T) (gossh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
}

func ptr[T any](v T) *T { return &v }

func TestSSHAuthorize(t *testing.T) {
	p := newTestPlatform(t)
	ctx := context.Background()
	user := func(name string) (store.User, int64) {
		u, err := p.CreateUser(context.Background(), Operator(), NewUser{Username: name, Password: "password-" + name})
		if err != nil {
			t.Fatal(err)
		}
		cs, err := p.Companies(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		return u, cs[0].ID
	}
	// The first account is a superuser, who may manage every app.
	root, _ := user("root")
	alice, aliceCo := user("alice")
	bob, bobCo := user("bob")
	carol, _ := user("carol")
	appKey, appKeyLine := newKey(t)
	aliceKey, aliceKeyLine := newKey(t)
	bobKey, bobKeyLine := newKey(t)
	carolKey, carolKeyLine := newKey(t)
	stranger, _ := newKey(t)

	web, err := p.CreateApp(ctx, alice, aliceCo, AppInput{Name: ptr("web"), Image: ptr("static"), Plan: ptr(int64(1)),
		SSHKeys: &[]string{appKeyLine + " deploy@ci"}, SSHPassword: ptr("app-password")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateApp(ctx, bob, bobCo, AppInput{Name: ptr("other"), Image: ptr("static"), Plan: ptr(int64(1))}); err != nil {
		t.Fatal(err)
	}
	rootKey, rootKeyLine := newKey(t)
	for u, line := range map[*store.User]string{&alice: aliceKeyLine, &bob: bobKeyLine, &carol: carolKeyLine, &root: rootKeyLine} {
		if _, err := p.AddKey(ctx, *u, "", line); err != nil {
			t.Fatal(err)
		}
	}
	// carol is a member of alice's company, but her account is disabled.
	if err := p.store.SetMember(aliceCo, carol.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.UpdateUser(carol.ID, func(u *store.User) error { u.IsActive = false; return nil }); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		app  string
		key  gossh.PublicKey
		ok   bool
	}{
		{"app key", "web", appKey, true},
		{"app key on another app", "other", appKey, false},
		{"member's key", "web", aliceKey, true},
		{"member's key on another company's app", "other", aliceKey, false},
		{"outsider's key", "web", bobKey, false},
		{"own company's app", "other", bobKey, true},
		{"disabled member", "web", carolKey, false},
		{"superuser's key", "other", rootKey, true},
		{"unknown key", "web", stranger, false},
		{"unknown app", "nope", appKey, false},
	} {
		t.Run("key/"+tc.name, func(t *testing.T) {
			access, err := p.SSH().AuthorizeKey(ctx, tc.app, tc.key)
			checkGrant(t, access.AppName, tc.app, err, tc.ok)
		})
	}
	for _, tc := range []struct {
		name, app, password string
		ok                  bool
	}{
		{"right password", "web", "app-password", true},
		{"wrong password", "web", "app-passworD", false},
		{"app without a password", "other", "", false},
		{"unknown app", "nope", "app-password", false},
	} {
		t.Run("password/"+tc.name, func(t *testing.T) {
			access, err := p.SSH().AuthorizePassword(ctx, tc.app, tc.password)
			checkGrant(t, access.AppName, tc.app, err, tc.ok)
		})
	}

	access, err := p.SSH().AuthorizeKey(ctx, "web", appKey)
	if err != nil {
		t.Fatal(err)
	}
	if access.UID != web.UID || access.GID != web.UID || access.UID == 0 || access.AppID != web.ID ||
		access.RepoDir != filepath.Join(p.cfg.DataDir, "repos", "1.git") {
		t.Fatalf("access: %+v (app uid %d)", access, web.UID)
	}
	fi, err := os.Stat(access.VolumeDir)
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid != web.UID {
		t.Fatalf("volume %s not made for the app: %v", access.VolumeDir, err)
	}
}

func checkGrant(t *testing.T, granted, app string, err error, ok bool) {
	t.Helper()
	switch {
	case ok && err != nil:
		t.Fatalf("refused: %v", err)
	case ok && granted != app:
		t.Fatalf("granted %q, want %q", granted, app)
	case !ok && err != errSSHDenied:
		// One error value for every refusal: nothing tells an unknown app
		// from a wrong credential.
		t.Fatalf("got %v, want errSSHDenied", err)
	}
}

func TestAddKey(t *testing.T) {
	p := newTestPlatform(t)
	u, err := p.CreateUser(context.Background(), Operator(), NewUser{Username: "alice", Password: "password-alice"})
	if err != nil {
		t.Fatal(err)
	}
	_, line := newKey(t)
	_, other := newKey(t)
	for _, tc := range []struct {
		name, keyName, key string
		wantName           string
		wantField          string
	}{
		{"comment names the key", "", line + " alice@laptop", "alice@laptop", ""},
		{"same key again", "again", line, "", "key"},
		{"not a key", "", "ssh-ed25519 AAAAnope", "", "key"},
		{"two keys", "", other + "\n" + line, "", "key"},
		{"name too long", strings.Repeat("n", 101), other, "", "name"},
		{"given name", "ci", other + " ignored", "ci", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := p.AddKey(context.Background(), u, tc.keyName, tc.key)
			var v *ValidationError
			switch {
			case tc.wantField != "" && (!errors.As(err, &v) || v.Fields[tc.wantField] == nil):
				t.Fatalf("got %v, want a validation error on %s", err, tc.wantField)
			case tc.wantField == "" && err != nil:
				t.Fatal(err)
			case tc.wantField == "" && (k.Name != tc.wantName || !strings.HasPrefix(k.Fingerprint, "SHA256:") || strings.Contains(k.PublicKey, " ignored")):
				t.Fatalf("stored %+v", k)
			}
		})
	}
	keys, err := p.Keys(context.Background(), u)
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys: %+v %v", keys, err)
	}
	if err := p.DeleteKey(context.Background(), u, keys[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteKey(context.Background(), u, keys[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestReleaseLine(t *testing.T) {
	p := newTestPlatform(t)
	a := store.App{ID: 7}
	appDir := filepath.Join(p.volumeDir(a), "app")
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "Procfile")
	if err := os.WriteFile(outside, []byte("release: secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	procfile := filepath.Join(appDir, "Procfile")
	for _, tc := range []struct {
		name    string
		make    func() error
		want    string
		wantErr string
	}{
		{"none", func() error { return nil }, "", ""},
		{"no release line", func() error { return os.WriteFile(procfile, []byte("web: ./serve\n"), 0o644) }, "", ""},
		{"release line", func() error {
			return os.WriteFile(procfile, []byte("# build\nweb: ./serve\nrelease: make assets\n"), 0o644)
		}, "make assets", ""},
		{"bad line", func() error { return os.WriteFile(procfile, []byte("what\n"), 0o644) }, "", "procfile line 1"},
		{"symlink out of the volume", func() error { return os.Symlink(outside, procfile) }, "", "Procfile"},
		{"fifo", func() error { return syscall.Mkfifo(procfile, 0o644) }, "", "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.RemoveAll(procfile); err != nil {
				t.Fatal(err)
			}
			if err := tc.make(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			var got string
			var err error
			go func() { got, err = p.releaseLine(a, "app"); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("reading the Procfile hangs")
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "secret") {
					t.Fatalf("got %q %v, want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q %v, want %q", got, err, tc.want)
			}
		})
	}
}

// execContainers is a runtime with one running web container of app 1 that
// records what is executed in it; other calls are not expected.
type execContainers struct {
	Containers
	running bool
	code    int
	execs   []rtm.ExecSpec
}

func (c *execContainers) List(context.Context, map[string]string) ([]rtm.Instance, error) {
	if !c.running {
		return nil, nil
	}
	return []rtm.Instance{{Name: "web-web-1", Status: rtm.StatusRunning, Labels: map[string]string{rtm.LabelProcess: "web"}}}, nil
}

func (c *execContainers) Exec(_ context.Context, _ string, spec rtm.ExecSpec) (int, error) {
	c.execs = append(c.execs, spec)
	return c.code, nil
}

// newApp creates an app "web" of a new user.
func newApp(t *testing.T, p *Platform) store.App {
	t.Helper()
	u, err := p.CreateUser(context.Background(), Operator(), NewUser{Username: "alice", Password: "password-alice"})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := p.Companies(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.CreateApp(context.Background(), u, cs[0].ID, AppInput{Name: ptr("web"), Image: ptr("static"), Plan: ptr(int64(1))})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
