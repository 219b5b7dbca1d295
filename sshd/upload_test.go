package sshd_test

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
)

// sftpClient opens an SFTP session of app with the Go client, which can be
// cut in the middle of a write as a dropped connection would.
func (e *env) sftpClient(app *testApp) (*sftp.Client, *gossh.Client) {
	e.t.Helper()
	conn, err := gossh.Dial("tcp", net.JoinHostPort("127.0.0.1", e.port), &gossh.ClientConfig{
		User:            app.name,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(app.signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	client, err := sftp.NewClient(conn)
	if err != nil {
		e.t.Fatal(err)
	}
	return client, conn
}

// uploadTemporaries lists the temporaries of uploads left in dir.
func uploadTemporaries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".rosti-upload-") {
			left = append(left, e.Name())
		}
	}
	return left
}

func TestSFTPUploadLandsWhenComplete(t *testing.T) {
	e := newEnv(t, "upapp")
	app := e.apps["upapp"]
	volume := app.access.VolumeDir
	mustWrite(t, filepath.Join(volume, "page.html"), "old page\n", 0o640)
	mustWrite(t, filepath.Join(volume, "log.txt"), "line 1\n", 0o600)
	for _, name := range []string{"page.html", "log.txt"} {
		if err := os.Chown(filepath.Join(volume, name), int(app.access.UID), int(app.access.GID)); err != nil {
			t.Fatal(err)
		}
	}
	local := localTree(t, map[string]string{"page.html": "new page\n", "fresh.txt": "fresh\n", "log.txt": "line 1\nline 2\n"})
	out, code := e.sftpBatch(app, local, "put page.html page.html\nput fresh.txt fresh.txt\nreput log.txt log.txt\n")
	if code != 0 {
		t.Fatalf("sftp batch failed (exit %d):\n%s", code, out)
	}
	tests := []struct {
		name, content string
		mode          os.FileMode
	}{
		{"page.html", "new page\n", 0o640}, // replaced, keeping its mode
		{"fresh.txt", "fresh\n", 0o644},
		{"log.txt", "line 1\nline 2\n", 0o600}, // resumed in place
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(volume, tt.name)
			if got := readFile(t, file); got != tt.content {
				t.Errorf("content %q, want %q", got, tt.content)
			}
			if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != tt.mode {
				t.Errorf("mode %v (%v), want %v", fi.Mode().Perm(), err, tt.mode)
			}
			if owner := ownerOf(t, file); owner != ownerOf(t, volume) {
				t.Errorf("owned by %s, want the app's %s", owner, ownerOf(t, volume))
			}
		})
	}
	if left := uploadTemporaries(t, volume); len(left) > 0 {
		t.Errorf("temporaries left: %q", left)
	}
}

func TestSFTPCutUploadKeepsTheFormerFile(t *testing.T) {
	e := newEnv(t, "cutapp")
	app := e.apps["cutapp"]
	volume := app.access.VolumeDir
	mustWrite(t, filepath.Join(volume, "data.bin"), "former content\n", 0o644)
	tests := []struct {
		name, former string // "" for a new file
	}{
		{"data.bin", "former content\n"},
		{"new.bin", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, conn := e.sftpClient(app)
			f, err := client.Create("/srv/" + tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte(strings.Repeat("partial ", 10000))); err != nil {
				t.Fatal(err)
			}
			// During the upload the name shows what it held before.
			fi, err := client.Stat("/srv/" + tt.name)
			switch {
			case tt.former == "" && err == nil:
				t.Errorf("a new file is visible under its name before it is complete")
			case tt.former != "" && (err != nil || fi.Size() != int64(len(tt.former))):
				t.Errorf("stat during the upload: %v, %v; want the former file", fi, err)
			}
			conn.Close() // cut, without closing the file
			waitFor(t, "the temporary to be removed", func() bool { return len(uploadTemporaries(t, volume)) == 0 })
			got, err := os.ReadFile(filepath.Join(volume, tt.name))
			switch {
			case tt.former == "" && !os.IsNotExist(err):
				t.Errorf("a cut upload of a new file left %d bytes under its name (%v)", len(got), err)
			case tt.former != "" && string(got) != tt.former:
				t.Errorf("a cut upload left %d bytes (%v), want the former content", len(got), err)
			}
		})
	}
	t.Run("completed", func(t *testing.T) {
		client, _ := e.sftpClient(app)
		f, err := client.Create("/srv/data.bin")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, strings.NewReader("complete\n")); err != nil {
			t.Fatal(err)
		}
		if err := f.Chmod(0o600); err != nil { // fsetstat on the handle
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(volume, "data.bin")); got != "complete\n" {
			t.Errorf("content %q after a complete upload", got)
		}
		if fi, err := os.Stat(filepath.Join(volume, "data.bin")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("mode set on the handle during the upload: %v (%v), want 0600", fi.Mode().Perm(), err)
		}
	})
}
