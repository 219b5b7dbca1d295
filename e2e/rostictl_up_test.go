package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
)

// This file replays Rosti's command-line client, rostictl
// (github.com/rosti-cz/rostictl, the version whose commands.go has
// commandImport and the technology check), step by step as its source
// does it: the same API calls in the same order with the same bodies and
// headers (src/rostiapi/client.go), the same SSH commands, archive and
// SFTP writes (src/ssh/client.go, commands.go commandUp, tools.go). The one
// thing changed is rostictl's apiHost constant (src/rostiapi/client.go),
// the address of the API: rostictl speaks HTTPS to it (rosti's
// --panel-domain), this test plain HTTP to the API's loopback address.

// More of rostictl's types (src/rostiapi/types.go) beside those in
// rostictl_test.go.
type (
	rostictlCompany struct {
		ID   uint   `json:"id"`
		Name string `json:"name"`
	}
	rostictlAction struct {
		Action string `json:"action"`
	}
	rostictlErrorResponse struct {
		Message string         `json:"message"`
		Errors  map[string]any `json:"errors"`
	}
)

// rostifile is a parsed Rostifile (src/parser/types.go), with the fields
// commandUp reads.
type rostifile struct {
	Name            string
	Runtime         string
	Technology      string
	Domains         []string
	HTTPS           bool
	SourcePath      string
	Plan            string
	AppPort         int
	Processes       []rostifileProcess
	Crontabs        []string
	BeforeCommands  []string
	AfterCommands   []string
	InitialCommands []string
	Exclude         []string
}

type rostifileProcess struct {
	Name            string
	Command         string
	StopKillAsGroup bool
}

// rostictl is one user's rostictl: a token (src/config), an RSA key in
// ~/.ssh (tools.go findSSHKey) and the project's .rosti.state (src/state).
type rostictl struct {
	t       *testing.T
	apiURL  string
	token   string
	keyPath string
	// .rosti.state
	appID, companyID uint
	// client.CompanyID
	clientCompany uint
}

// call is rostiapi.Client.call: the method, the path under /api/v1/, the
// payload (empty for reads), the two headers it adds, a 60s timeout.
func (c *rostictl) call(method, path string, payload []byte) ([]byte, int) {
	c.t.Helper()
	client := &http.Client{Timeout: 60 * time.Second}
	req, err := http.NewRequest(method, c.apiURL+"/api/v1/"+path, bytes.NewReader(payload))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Add("authorization", "Token "+c.token)
	req.Header.Add("content-type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return body, resp.StatusCode
}

// read is the shape of GetApps, GetApp, GetPlans, GetCompanies,
// GetRuntimes and GetAppStatus: 200 and a body that decodes into v, or
// rostictl gives up.
func (c *rostictl) read(path string, v any) {
	c.t.Helper()
	body, code := c.call("GET", path, []byte(""))
	if code != 200 {
		c.t.Fatalf("rostictl: GET %s: non-200 HTTP status code returned (%d): %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		c.t.Fatalf("rostictl: GET %s: cannot parse response from the server (%v): %s", path, err, body)
	}
}

// write is the shape of CreateApp, UpdateApp and DoApp: the payload
// marshalled from rostictl's struct, 200 or an ErrorResponse.
func (c *rostictl) write(method, path string, in, out any) {
	c.t.Helper()
	payload, err := json.Marshal(in)
	if err != nil {
		c.t.Fatal(err)
	}
	body, code := c.call(method, path, payload)
	if code != 200 {
		var e rostictlErrorResponse
		if err := json.Unmarshal(body, &e); err != nil {
			c.t.Fatalf("rostictl: %s %s: problem while decoding error message: %v: %s", method, path, err, body)
		}
		c.t.Fatalf("rostictl: %s %s: %d HTTP status code returned (%s) %v", method, path, code, e.Message, e.Errors)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			c.t.Fatalf("rostictl: %s %s: problem while decoding app structure: %v: %s", method, path, err, body)
		}
	}
}

func (c *rostictl) companyPath(format string, args ...any) string {
	return strconv.Itoa(int(c.clientCompany)) + "/" + fmt.Sprintf(format, args...)
}

// getAppStatus is rostiapi.Client.GetAppStatus.
func (c *rostictl) getAppStatus() rostictlStatus {
	c.t.Helper()
	var st rostictlStatus
	c.read(c.companyPath("apps-status/%d/", c.appID), &st)
	return st
}

// getApp is rostiapi.Client.GetApp.
func (c *rostictl) getApp() rostictlApp {
	c.t.Helper()
	var a rostictlApp
	c.read(c.companyPath("apps/%d/", c.appID), &a)
	return a
}

// rostictlSSH is src/ssh/client.go's Client: a new connection for every
// command, the key from ~/.ssh, rostictl's cipher list, any host key.
type rostictlSSH struct {
	t    *testing.T
	addr string
	user string
	key  string
}

// client is ssh.Client.client. rostictl is built with x/crypto of
// 2020-12, which signs with an RSA key as "ssh-rsa" (SHA-1) only and
// offers the key exchanges and MACs of its time: this client is held to
// those.
func (s *rostictlSSH) client() (*gossh.Client, error) {
	raw, err := os.ReadFile(s.key)
	if err != nil {
		s.t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(raw)
	if err != nil {
		s.t.Fatalf("loading ssh key error: %v", err)
	}
	signer, err = gossh.NewSignerWithAlgorithms(signer.(gossh.AlgorithmSigner), []string{gossh.KeyAlgoRSA})
	if err != nil {
		s.t.Fatal(err)
	}
	config := gossh.Config{
		KeyExchanges: []string{"curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384",
			"ecdh-sha2-nistp521", "diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1"},
		MACs: []string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-256", "hmac-sha1", "hmac-sha1-96"},
	}
	config.SetDefaults()
	config.Ciphers = []string{"aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com",
		"arcfour256", "arcfour128", "twofish256-cbc", "twofish-cbc", "twofish128-cbc", "blowfish-cbc",
		"3des-cbc", "arcfour", "cast128-cbc", "aes256-cbc", "aes128-cbc"}
	return gossh.Dial("tcp", s.addr, &gossh.ClientConfig{
		User: s.user, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, Config: config,
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
}

// run is ssh.Client.Run: stdout and stderr in one buffer, the session's
// error (an *ssh.ExitError for a non-zero exit).
func (s *rostictlSSH) run(command string) (string, error) {
	client, err := s.client()
	if err != nil {
		return "", err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer session.Close()
	var mu sync.Mutex
	var out bytes.Buffer
	session.Stdout = &lockedWriter{mu: &mu, w: &out}
	session.Stderr = session.Stdout // one buffer, as rostictl's (which races)
	err = session.Run(command)
	mu.Lock()
	defer mu.Unlock()
	return out.String(), err
}

// mustRun is how commandUp treats most commands: an error ends `up`.
func (s *rostictlSSH) mustRun(command string) string {
	s.t.Helper()
	out, err := s.run(command)
	if err != nil {
		s.t.Fatalf("rostictl: command '%s' error: %v\n%s", command, err, out)
	}
	return out
}

// streamFile is ssh.Client.StreamFile: the file on the stdin of tee.
func (s *rostictlSSH) streamFile(path string, stream io.Reader) {
	s.t.Helper()
	client, err := s.client()
	if err != nil {
		s.t.Fatalf("loading client error: %s", err)
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		s.t.Fatalf("creating SSH session error: %s", err)
	}
	defer session.Close()
	writer, err := session.StdinPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := session.Start("/bin/sh -c 'tee \"" + path + "\" > /dev/null'"); err != nil {
		s.t.Fatalf("starting command error: %s", err)
	}
	if _, err := io.Copy(writer, stream); err != nil {
		s.t.Fatalf("copying data error: %s", err)
	}
	writer.Close()
	if err := session.Wait(); err != nil {
		s.t.Fatalf("waiting to finish the command error: %s", err)
	}
}

// sendFile is ssh.Client.SendFile: an SFTP open with O_WRONLY|O_CREATE|O_TRUNC
// and one write.
func (s *rostictlSSH) sendFile(path, content string) {
	s.t.Helper()
	client, err := s.client()
	if err != nil {
		s.t.Fatal(err)
	}
	defer client.Close()
	sc, err := sftp.NewClient(client)
	if err != nil {
		s.t.Fatal(err)
	}
	defer sc.Close()
	f, err := sc.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		s.t.Fatalf("rostictl: SFTP open %s: %v", path, err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(content)); err != nil {
		s.t.Fatalf("rostictl: SFTP write %s: %v", path, err)
	}
}

// createArchive makes the tar that tools.go createArchive makes: a walk
// of source, entries named by its base name joined with the path with
// source cut off, headers from the local files, names in exclude left out
// (a directory with everything under it).
func createArchive(t *testing.T, source, target string, exclude []string) {
	t.Helper()
	out, err := os.Create(target)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	defer tw.Close()
	base := filepath.Base(source)
	err = filepath.Walk(source, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		for _, name := range exclude {
			if info.Name() == name {
				if info.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		hdr, err := tar.FileInfoHeader(info, info.Name())
		if err != nil {
			return err
		}
		hdr.Name = filepath.Join(base, strings.TrimPrefix(path, source))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// up is commands.go commandUp, step by step, for the Rostifile rf in the
// current directory. It reports whether it created the app.
func (c *rostictl) up(rf rostifile) (created bool) {
	t := c.t
	t.Helper()
	// tools.go findCompany, only while the state file has no company: the
	// one company of the user.
	if c.companyID == 0 {
		var companies []rostictlCompany
		c.read("companies/", &companies)
		if len(companies) != 1 {
			t.Fatalf("rostictl: want one company to pick, have %+v", companies)
		}
		c.companyID = companies[0].ID
	}
	c.clientCompany = c.companyID

	// tools.go selectPlan: Rostifile's plan, else "start+", by name.
	plan := rf.Plan
	if plan == "" {
		plan = "start+"
	}
	var plans []rostictlPlan
	c.read(c.companyPath("plans/"), &plans)
	var planID uint
	for _, p := range plans {
		if strings.EqualFold(p.Name, plan) {
			planID = p.ID
		}
	}
	// tools.go selectRuntime: the Rostifile's image, else the default one.
	var runtimes []rostictlRuntime
	c.read(c.companyPath("runtimes/"), &runtimes)
	var image string
	for _, rt := range runtimes {
		if rf.Runtime == "" && rt.Default || rf.Runtime != "" && rt.Image == rf.Runtime {
			image = rt.Image
			break
		}
	}
	if image == "" {
		t.Fatalf("rostictl: no suitable runtime found in %+v", runtimes)
	}
	// commandUp: the mode from the Rostifile's https, then GetApp, DoApp
	// and UpdateApp for the app of the state file, or CreateApp.
	mode := "http"
	if rf.HTTPS {
		mode = "https+le"
	}
	pub, err := os.ReadFile(c.keyPath + ".pub") // readLocalSSHPubKey: the file as it is
	if err != nil {
		t.Fatal(err)
	}
	app := rostictlApp{Name: rf.Name, Image: image, Domains: rf.Domains, Mode: mode, Plan: planID,
		SSHKeys: []string{string(pub)}, AppPort: rf.AppPort}
	var got rostictlApp
	if c.appID > 0 {
		// An existing app: GetApp, DoApp start when it is off, UpdateApp.
		if !c.getApp().Enabled {
			c.write("PUT", c.companyPath("apps-action/%d/", c.appID), rostictlAction{Action: "start"}, nil)
		}
		app.ID = c.appID
		c.write("PUT", c.companyPath("apps/%d/", c.appID), app, &got)
	} else {
		c.write("POST", c.companyPath("apps/"), app, &got)
		c.appID, created = got.ID, true
	}
	if len(got.SSHAccess) == 0 {
		t.Fatal("rostictl: no SSH access found")
	}
	s := &rostictlSSH{t: t, key: c.keyPath, user: got.SSHAccess[0].Username,
		addr: net.JoinHostPort(got.SSHAccess[0].Hostname, strconv.Itoa(int(got.SSHAccess[0].Port)))}

	// commandUp "waiting for SSH daemon to get ready": ssh Client.Run of
	// `echo 1` every 5s (every second here), 13 tries.
	deadline := time.Now().Add(13 * 5 * time.Second)
	for {
		out, err := s.run("echo 1")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rostictl: SSH daemon has not started in time: %v %s", err, out)
		}
		time.Sleep(time.Second)
	}
	if created && rf.Technology != "" {
		// commandUp "deleting default code", for a new app with a technology.
		s.mustRun("/bin/sh -c 'rm -rf /srv/app/* && rm -rf /srv/conf/supervisor.d/app.conf && supervisorctl reread && supervisorctl update'")
	}
	if st := c.getAppStatus(); st.PrimaryTech.Name != rf.Technology {
		// commandUp "technology change detected": GetAppStatus's primary_tech
		// against the Rostifile's technology.
		s.mustRun("/usr/local/bin/rosti " + rf.Technology)
	}
	if created { // commandUp: initial_commands, as they are
		for _, cmd := range rf.InitialCommands {
			s.mustRun(cmd)
		}
	}
	// commandUp "creating an archive" (rostictl writes /tmp/_archive.tar; a
	// private path here) and "copying archive into the container" through
	// ssh Client.StreamFile into /srv/_archive.tar.
	archivePath := filepath.Join(t.TempDir(), "_archive.tar")
	createArchive(t, rf.SourcePath, archivePath, rf.Exclude)
	archive, err := os.Open(archivePath)
	if err != nil {
		t.Fatal(err)
	}
	defer archive.Close()
	s.streamFile("/srv/_archive.tar", archive)
	for _, cmd := range rf.BeforeCommands { // commandUp: before_commands, wrapped
		s.mustRun("/bin/sh -c '" + cmd + "'")
	}
	// commandUp "un-archiving code in the container", in the SSH cwd (/srv).
	s.mustRun("/bin/sh -c \"mkdir -p /srv/app && mv _archive.tar /srv/app/ && cd /srv/app && tar xf _archive.tar && rm _archive.tar\"")
	if len(rf.Crontabs) > 0 { // commandUp "setting up crontabs": ssh Client.SendFile, then crontab
		s.sendFile("/srv/conf/crontab", strings.Join(rf.Crontabs, "\n")+"\n")
		s.mustRun("crontab /srv/conf/crontab")
	}
	if len(rf.Processes) > 0 { // commandUp "setting up supervisor processes": its template, SendFile, reread, update
		var programs []string
		for _, p := range rf.Processes {
			program := "[program:" + p.Name + "]\ncommand=" + p.Command + "\n" +
				"environment=PATH=\"/srv/bin/primary_tech:/usr/local/bin:/usr/bin:/bin:/srv/.npm-packages/bin\"\n" +
				"autostart=true\nautorestart=true\ndirectory=/srv/app\nprocess_name=" + p.Name + "\n" +
				"stdout_logfile=/srv/log/" + p.Name + ".log\nstdout_logfile_maxbytes=2MB\nstdout_logfile_backups=5\n" +
				"stdout_capture_maxbytes=2MB\nstdout_events_enabled=false\nredirect_stderr=true\n"
			if p.StopKillAsGroup {
				program += "stopasgroup=true\nkillasgroup=true\n"
			}
			programs = append(programs, program)
		}
		s.sendFile("/srv/conf/supervisor.d/rostictl.conf", "# This file is gonna be rewritten by rostictl\n\n"+strings.Join(programs, "\n")+"\n")
		s.mustRun("supervisorctl reread")
		s.mustRun("supervisorctl update")
	}
	for _, cmd := range rf.AfterCommands { // commandUp: after_commands, wrapped
		s.mustRun("/bin/sh -c '" + cmd + "'")
	}
	// commandUp "all done, let's check status of the application":
	// GetAppStatus and GetApp, for printAppStatus.
	c.getAppStatus()
	c.getApp()
	// state.Write, deferred in commandUp.
	if err := os.WriteFile(".rosti.state", fmt.Appendf(nil, "app_id: %d\ncompany_id: %d\nssh_key_path: %s\n", c.appID, c.companyID, c.keyPath), 0o644); err != nil {
		t.Fatal(err)
	}
	return created
}

// status is commands.go commandStatus: GetAppStatus, then GetApp.
func (c *rostictl) status() (rostictlStatus, rostictlApp) {
	c.t.Helper()
	c.clientCompany = c.companyID
	return c.getAppStatus(), c.getApp()
}

// down is commands.go commandDown: DoApp stop.
func (c *rostictl) down() {
	c.t.Helper()
	c.clientCompany = c.companyID
	c.write("PUT", c.companyPath("apps-action/%d/", c.appID), rostictlAction{Action: "stop"}, nil)
}

// remove is commands.go commandRemove: DeleteApp, then the state file goes.
func (c *rostictl) remove() {
	c.t.Helper()
	c.clientCompany = c.companyID
	if body, code := c.call("DELETE", c.companyPath("apps/%d/", c.appID), []byte("")); code != 200 {
		c.t.Errorf("rostictl remove: non-200 HTTP status code returned (%d): %s", code, body)
	}
	c.appID = 0
}

// TestRostictlUp: on a fresh server, a new user's `rostictl plans`,
// `runtimes` and `companies` answer before any deploy; their `rostictl up`
// of a binary project (the Rostifile `rostictl init` writes for one, plus
// a domain and a cron line) creates the app of the default runtime and
// ends with it served through the proxy; a second `up` of changed files updates it;
// `rostictl status` tells it runs and answers HTTP, with the plan's
// limits; after `rostictl down`, `up` starts the app again and deploys. A
// Rostifile without a technology deploys too.
func TestRostictlUp(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skipf("needs ssh-keygen: %v", err)
	}
	sshPort := freePort(t)
	// ssh_access must name an address the client reaches: the real port
	// and a host name this machine resolves.
	in := startRosti(t, rostiBin(t), filepath.Join(t.TempDir(), "data"), "--ssh", "127.0.0.1:"+sshPort, "--ssh-host", "127.0.0.1")
	alice := in.register(t, "alice")

	home := t.TempDir()
	key := filepath.Join(home, ".ssh", "id_rsa")
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "rsa", "-N", "", "-C", "alice@laptop", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	ctl := &rostictl{t: t, apiURL: in.apiURL, token: alice.token, keyPath: key}
	t.Cleanup(func() { // before rosti stops, so that no container is left
		if ctl.appID != 0 {
			ctl.remove()
		}
	})

	// The project: what `rostictl init` writes for a binary (scanner.go
	// binary: the program "app", `supervisorctl stop app` before the files,
	// `chmod` and `supervisorctl start app` after them), a domain of its
	// own, a cron line, and the old files removed before the new ones are
	// unpacked. Its "binary" serves /srv/app/public with the image's httpd
	// (named by its path: the PATH rostictl gives programs has no sbin).
	project := t.TempDir()
	if err := os.Chmod(project, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, project, map[string]string{
		"Rostifile": "name: hellobinary\ntechnology: binary\ndomains:\n- www.hello.test\nhttps: false\nsource_path: .\n" +
			"processes:\n- name: app\n  command: /srv/app/server.sh\n" +
			"crontabs:\n- '* * * * * echo tick'\n" +
			"before_commands:\n- supervisorctl stop app\n- rm -rf /srv/app/public\n" +
			"after_commands:\n- chmod 755 /srv/app/server.sh\n- supervisorctl start app\n",
		"server.sh":         "#!/bin/sh\nexec /usr/sbin/httpd -f -p 8080 -h /srv/app/public\n",
		"public/index.html": "hello v1\n",
		"public/old.html":   "only in v1\n",
	})
	if err := os.Chmod(filepath.Join(project, "server.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Some weight for tee's stdin and tar: 4 MB that do not compress.
	data := make([]byte, 4<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, "data.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	rf := rostifile{
		Name: "hellobinary", Technology: "binary", Domains: []string{"www.hello.test"}, SourcePath: ".",
		Processes:      []rostifileProcess{{Name: "app", Command: "/srv/app/server.sh"}},
		Crontabs:       []string{"* * * * * echo tick"},
		BeforeCommands: []string{"supervisorctl stop app", "rm -rf /srv/app/public"},
		AfterCommands:  []string{"chmod 755 /srv/app/server.sh", "supervisorctl start app"},
	}
	t.Chdir(project) // rostictl works in the project's directory

	// commands.go commandPlans, commandRuntimes and commandCompanies, before
	// any deploy: no state file, so client.CompanyID is 0.
	var plans []rostictlPlan
	ctl.read(ctl.companyPath("plans/"), &plans)
	var runtimes []rostictlRuntime
	ctl.read(ctl.companyPath("runtimes/"), &runtimes)
	var companies []rostictlCompany
	ctl.read("companies/", &companies)
	if len(plans) == 0 || len(runtimes) == 0 || len(companies) != 1 {
		t.Fatalf("rostictl plans, runtimes, companies: %+v %+v %+v", plans, runtimes, companies)
	}

	if !ctl.up(rf) {
		t.Fatal("the first up did not create the app")
	}
	in.waitServed(t, "hellobinary.apps.test", "hello v1\n")
	in.waitServed(t, "www.hello.test", "hello v1\n")
	s := &rostictlSSH{t: t, key: key, user: "hellobinary", addr: "127.0.0.1:" + sshPort}
	sum := sha256.Sum256(data)
	if out := s.mustRun("sha256sum /srv/app/data.bin; ls /srv /srv/app"); !strings.HasPrefix(out, hex.EncodeToString(sum[:])) || strings.Contains(out, "_archive.tar") {
		t.Fatalf("after the first up: %q, want data.bin's sha256 %x and no archive left", out, sum)
	}
	st, app := ctl.status()
	if !st.Running || st.PrimaryTech.Name != "binary" || app.Name != "hellobinary" || !app.Enabled || strings.Join(app.Domains, " ") != "hellobinary.apps.test www.hello.test" {
		t.Fatalf("status after the first up: %+v\napp: %+v", st, app)
	}
	waitFor(t, "rostictl status: HTTP all good", 30*time.Second, func() (bool, string) {
		st, _ := ctl.status()
		return st.Running && st.HTTPStatus, fmt.Sprintf("%+v", st)
	})

	// The second up: changed files, the program stopped and started again
	// around them, the same app updated.
	writeTree(t, project, map[string]string{"public/index.html": "hello v2\n"})
	if err := os.Remove(filepath.Join(project, "public", "old.html")); err != nil {
		t.Fatal(err)
	}
	if ctl.up(rf) {
		t.Fatal("the second up created another app")
	}
	in.waitServed(t, "hellobinary.apps.test", "hello v2\n")
	in.waitServed(t, "www.hello.test", "hello v2\n")
	if code, _, _ := in.viaProxy("hellobinary.apps.test", "/old.html"); code != 404 {
		t.Errorf("old.html after the second up: HTTP %d, want 404 (before_commands remove the old files)", code)
	}
	if out := s.mustRun("crontab -l"); !strings.Contains(out, "* * * * * echo tick") {
		t.Errorf("crontab -l: %q", out)
	}
	if out := s.mustRun("supervisorctl status app"); !strings.Contains(out, "RUNNING") {
		t.Errorf("supervisorctl status app: %q", out)
	}
	st, _ = ctl.status()
	if !st.Running || !st.HTTPStatus || strings.Contains(strings.Join(st.Errors, "\n"), "HTTP") {
		t.Fatalf("rostictl status after the second up: %+v", st)
	}
	for _, p := range plans {
		if p.Name == "start+" && (st.Memory.Limit != float64(p.RAM) || st.Storage.Limit != float64(p.Disk)/1000) {
			t.Errorf("rostictl status: memory limit %v MB, storage limit %v GB; plan start+: %+v", st.Memory.Limit, st.Storage.Limit, p)
		}
	}

	// `rostictl down`, then `up` again: up starts the app, waits (`echo 1`)
	// while its container starts, and deploys.
	ctl.down()
	waitFor(t, "rostictl status: not running", 60*time.Second, func() (bool, string) {
		st, app := ctl.status()
		return !st.Running && !app.Enabled, fmt.Sprintf("%+v %+v", st, app)
	})
	writeTree(t, project, map[string]string{"public/index.html": "hello v3\n"})
	if ctl.up(rf) {
		t.Fatal("the third up created another app")
	}
	in.waitServed(t, "hellobinary.apps.test", "hello v3\n")
	if _, app := ctl.status(); !app.Enabled {
		t.Fatalf("the app after up of a stopped app: %+v", app)
	}

	// A Rostifile without a technology: every up runs `/usr/local/bin/rosti `
	// (the status's primary_tech differs from ""), which must succeed.
	plain := t.TempDir()
	writeTree(t, plain, map[string]string{"Rostifile": "name: plain\nhttps: false\n", "index.html": "plain\n"})
	t.Chdir(plain)
	ctl2 := &rostictl{t: t, apiURL: in.apiURL, token: alice.token, keyPath: key}
	t.Cleanup(func() {
		if ctl2.appID != 0 {
			ctl2.remove()
		}
	})
	if !ctl2.up(rostifile{Name: "plain", SourcePath: "."}) {
		t.Fatal("up of plain did not create it")
	}
	s = &rostictlSSH{t: t, key: key, user: "plain", addr: "127.0.0.1:" + sshPort}
	if out := s.mustRun("cat /srv/app/index.html"); out != "plain\n" {
		t.Fatalf("plain's files: %q", out)
	}
}
