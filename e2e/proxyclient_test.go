package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawExchange sends request as is to the proxy, closes the sending side
// when halfClose is set, and reads the one answer.
func (in *instance) rawExchange(t *testing.T, request string, halfClose bool) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(in.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		c.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(body)
}

// TestProxyClientRequestIDAndBodies: a client's X-Request-Id reaches the
// app only as X-Client-Request-Id, next to rosti's own id; a request body
// the client does not finish gets 400 and is not blamed on the app, which
// goes on serving.
func TestProxyClientRequestIDAndBodies(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	admin := in.adminUser(t)
	in.importHTTPServerRuntime(t)
	app := in.createApp(t, admin, map[string]any{"name": "echo", "image": "httpserver", "plan": 1})
	in.waitRunning(t, admin, app)
	waitFor(t, "echo served through the proxy", 60*time.Second, func() (bool, string) {
		code, body, err := in.viaProxy("echo.apps.test", "/")
		return err == nil && code == 200 && strings.HasPrefix(body, "hello from"), fmt.Sprintf("%d %q %v", code, body, err)
	})

	// A head over the fast path's 8 KiB goes to net/http: both paths.
	pad := "X-Pad: " + strings.Repeat("p", 9<<10) + "\r\n"
	header := func(name, extra string) string {
		return "GET /header?name=" + name + " HTTP/1.1\r\nHost: echo.apps.test\r\nX-Request-Id: lb-42\r\n" + extra + "Connection: close\r\n\r\n"
	}
	for _, path := range []struct{ name, extra string }{{"fast path", ""}, {"net/http", pad}} {
		t.Run("request id/"+path.name, func(t *testing.T) {
			code, id := in.rawExchange(t, header("X-Request-Id", path.extra), false)
			if code != 200 || strings.Contains(id, "lb-42") || strings.Count(id, "\n") != 1 || len(id) < 10 {
				t.Errorf("the app got X-Request-Id %q (%d), want one id of rosti's", id, code)
			}
			waitFor(t, "the app's X-Request-Id in the access log", 10*time.Second, func() (bool, string) {
				return strings.Contains(in.logs(), " request_id="+strings.TrimSpace(id)+" "), id
			})
			if code, client := in.rawExchange(t, header("X-Client-Request-Id", path.extra), false); code != 200 || client != "lb-42\n" {
				t.Errorf("the app got X-Client-Request-Id %q (%d), want the client's", client, code)
			}
		})
	}

	chunked := "POST /upload HTTP/1.1\r\nHost: echo.apps.test\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct {
		name      string
		request   string
		halfClose bool
	}{
		{"bad chunk size", chunked + "3\r\nabc\r\nzz\r\n", false},
		{"chunk without its CRLF", chunked + "3\r\nabcX\r\n0\r\n\r\n", false},
		{"chunked body cut short", chunked + "5\r\nab", true},
		{"fast path: Content-Length body cut short",
			"POST /upload HTTP/1.1\r\nHost: echo.apps.test\r\nContent-Length: 10\r\n\r\nabc", true},
	}
	for _, tc := range tests {
		t.Run("body/"+tc.name, func(t *testing.T) {
			if code, body := in.rawExchange(t, tc.request, tc.halfClose); code != 400 || !strings.Contains(body, "request body is malformed or incomplete") {
				t.Errorf("got %d %q, want 400 from the proxy", code, body)
			}
			good := chunked + "3\r\nabc\r\n0\r\n\r\n"
			if code, body := in.rawExchange(t, good, false); code != 200 || body != "read 3 bytes" {
				t.Errorf("the next upload got %d %q", code, body)
			}
		})
	}
	waitFor(t, "access log lines of the uploads", 10*time.Second, func() (bool, string) {
		n := 0
		for _, l := range strings.Split(in.logs(), "\n") {
			if strings.Contains(l, " uri=/upload ") && strings.Contains(l, " status=400 ") {
				n++
			}
		}
		return n == len(tests), fmt.Sprintf("%d lines with status 400", n)
	})
	if logs := in.logs(); strings.Contains(logs, `msg="upstream error`) {
		t.Errorf("the app was blamed for its clients' bodies:\n%s", logs)
	}
	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
}
