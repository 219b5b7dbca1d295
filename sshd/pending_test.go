package sshd_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rosti-paas/rosti/sshd"
)

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// silentConn connects from source and says nothing; greeted reports
// whether the server sent its version line (a refused connection is
// closed without one).
func silentConn(t *testing.T, e *env, source string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	c, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", e.port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return c, strings.HasPrefix(line, "SSH-2.0-")
}

// TestConnectionsThatNeverLogInAreBounded: a client that opens
// connections and never logs in holds at most MaxPendingPerSource of them,
// everyone together at most MaxPending, each for LoginGrace; newcomers push
// out the connections of the address holding most; logins work again once
// the silent connections are gone, and a logged-in connection outlives the
// grace time.
func TestConnectionsThatNeverLogInAreBounded(t *testing.T) {
	e := newEnvWithoutServer(t, "busy")
	e.start(sshd.Config{MaxPending: 4, MaxPendingPerSource: 3, LoginGrace: 2 * time.Second, MaxAuthFailures: 100})
	app := e.apps["busy"]

	loggedIn, err := dial(t, e, "busy", gossh.PublicKeys(app.signer))
	if err != nil {
		t.Fatal(err)
	}
	defer loggedIn.Close()
	// Opening a channel ends the connection's time as pending.
	first, err := loggedIn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	var held []net.Conn
	for i := range 4 {
		c, greeted := silentConn(t, e, "127.0.0.2")
		if want := i < 3; greeted != want {
			t.Fatalf("silent connection %d from one address: greeted %v, want %v", i+1, greeted, want)
		}
		if greeted {
			held = append(held, c)
		}
	}
	c, greeted := silentConn(t, e, "127.0.0.3")
	if !greeted {
		t.Fatal("another address was refused before the total bound")
	}
	held = append(held, c)
	// Every place is taken now: a newcomer takes the place of the oldest
	// connection of the address holding most, not of the one holding one.
	c, greeted = silentConn(t, e, "127.0.0.4")
	if !greeted {
		t.Fatal("a newcomer was refused while one address holds three places")
	}
	if _, err := held[0].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the oldest connection of the address holding most was not closed for the newcomer: %v", err)
	}
	held = append(held[1:], c)
	c, greeted = silentConn(t, e, "127.0.0.5")
	if !greeted {
		t.Fatal("a second newcomer was refused while one address holds two places")
	}
	if _, err := held[0].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the oldest connection of the address holding most was not closed for the newcomer: %v", err)
	}
	held = append(held[1:], c)
	// Now every address holds one: a third holding none cannot push one out
	// without becoming one more of the same.
	if _, greeted := silentConn(t, e, "127.0.0.6"); greeted {
		t.Fatal("a newcomer was greeted although every address holds only one place")
	}

	// Each silent connection is closed once its grace time is over.
	for i, c := range held {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("silent connection %d: the server sent more than its version line", i+1)
		} else if isTimeout(err) {
			t.Fatalf("silent connection %d still open after 30s; want it closed after its grace time", i+1)
		}
	}
	if _, greeted := silentConn(t, e, "127.0.0.2"); !greeted {
		t.Fatal("places did not come back once the connections were closed")
	}
	during, err := dial(t, e, "busy", gossh.PublicKeys(app.signer))
	if err != nil {
		t.Fatalf("a login after the silent connections were closed failed: %v", err)
	}
	during.Close()

	// The connection that logged in before is still served.
	session, err := loggedIn.NewSession()
	if err != nil {
		t.Fatalf("a logged-in connection was cut after the grace time: %v", err)
	}
	defer session.Close()
	if out, err := session.Output("echo still here"); err != nil || strings.TrimSpace(string(out)) != "still here" {
		t.Fatalf("exec on the early connection: %q, %v", out, err)
	}
}
