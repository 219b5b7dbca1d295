package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/internal/logbuf"
)

func TestAppendLogValueQuotesLikeSlog(t *testing.T) {
	tests := []struct {
		name  string
		value string
		// stricter: slog writes it bare; quoting it too keeps log readers
		// safe from terminal control bytes and odd encodings.
		stricter bool
	}{
		{"plain", "/index.html", false},
		{"empty", "", false},
		{"space", "/a b", false},
		{"equals", "/a?b=1", false},
		{"quote", `/a"b`, false},
		{"newline", "/a\nmsg=forged", false},
		{"control", "/a\x01", false},
		{"delete", "/a\x7f", true},
		{"not ascii", "/é", true},
		{"backslash", `/a\b`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want bytes.Buffer
			slog.New(slog.NewTextHandler(&want, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == "v" {
						return a
					}
					return slog.Attr{}
				},
			})).Info("", "v", tc.value)
			got := "v=" + string(appendLogValue(nil, tc.value)) + "\n"
			if tc.stricter {
				if v, err := strconv.Unquote(got[2 : len(got)-1]); err != nil || v != tc.value {
					t.Errorf("got %s, want %q quoted", got, tc.value)
				}
				return
			}
			if got != want.String() {
				t.Errorf("got %q, slog writes %q", got, want.String())
			}
		})
	}
}

func TestAppendDurationMatchesDurationString(t *testing.T) {
	for _, d := range []time.Duration{0, 999, time.Microsecond, 512250, 1500 * time.Microsecond, 1234567, 2003 * time.Millisecond, 59900 * time.Millisecond} {
		if got := string(appendDuration(nil, d)); got != d.String() {
			t.Errorf("%d: got %q, want %q", int64(d), got, d.String())
		}
	}
}

// logfmt splits one access log line into its fields.
func logfmt(t *testing.T, line string) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for line != "" {
		k, rest, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("no '=' in %q", line)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("bad quoting in %q: %v", rest, err)
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
		}
		if _, dup := fields[k]; dup {
			t.Fatalf("field %s twice", k)
		}
		fields[k] = v
		line = strings.TrimPrefix(rest, " ")
	}
	return fields
}

func TestAccessLogLines(t *testing.T) {
	be := backend(t, "log")
	var logged bytes.Buffer
	var logMu sync.Mutex
	p := startProxy(t, Config{AccessLog: lockedWriter{&logMu, &logged}})
	p.SetRoutes([]Route{
		{App: "log", Hosts: []string{"log.apps.test"}, Upstreams: []string{addr(be)}},
		{App: "down", Hosts: []string{"down.apps.test"}, Upstreams: []string{closedAddr(t)}},
	}, nil)

	tests := []struct {
		name    string
		request string
		method  string
		want    map[string]string
	}{
		{"fast path", req("GET", "log.apps.test", "/a?b=1", "X-Request-Id: id-fast"), "GET",
			map[string]string{"app": "log", "method": "GET", "host": "log.apps.test", "uri": "/a?b=1", "status": "200", "bytes": "7"}},
		{"head", req("HEAD", "log.apps.test", "/head", "X-Request-Id: id-head"), "HEAD",
			map[string]string{"app": "log", "method": "HEAD", "status": "200", "bytes": "0"}},
		{"net/http path", "GET /old HTTP/1.0\r\nHost: log.apps.test\r\nX-Request-Id: id-old\r\n\r\n", "GET",
			map[string]string{"app": "log", "method": "GET", "uri": "/old", "status": "200", "bytes": "7"}},
		{"a quote in the uri cannot forge a field", req("GET", "log.apps.test", `/q"status=999`, "X-Request-Id: id-quote"), "GET",
			map[string]string{"uri": `/q"status=999`, "status": "200"}},
		{"app not answering", req("GET", "down.apps.test", "/down", "X-Request-Id: id-down"), "GET",
			map[string]string{"app": "down", "status": "502"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, p)
			c.send(tc.request)
			resp, _ := c.read(tc.method)
			// Every case has a URI of its own.
			uri := strings.Fields(tc.request)[1]
			var line string
			for deadline := time.Now().Add(10 * time.Second); line == "" && time.Now().Before(deadline); {
				logMu.Lock()
				for _, l := range strings.Split(logged.String(), "\n") {
					if l != "" && logfmt(t, l)["uri"] == uri {
						line = l
					}
				}
				logMu.Unlock()
				if line == "" {
					time.Sleep(5 * time.Millisecond) // polling, bounded by the deadline
				}
			}
			if line == "" {
				t.Fatalf("no access log line for %s (answered %d)", uri, resp.StatusCode)
			}
			fields := logfmt(t, line)
			for _, k := range []string{"time", "level", "msg", "component", "app", "remote", "method", "host", "uri", "request_id", "status", "bytes", "duration"} {
				if _, ok := fields[k]; !ok {
					t.Errorf("field %s missing from %q", k, line)
				}
			}
			if fields["status"] != strconv.Itoa(resp.StatusCode) {
				t.Errorf("logged status %s, the client got %d", fields["status"], resp.StatusCode)
			}
			for k, v := range tc.want {
				if fields[k] != v {
					t.Errorf("%s = %q, want %q in %q", k, fields[k], v, line)
				}
			}
			if _, err := time.ParseDuration(fields["duration"]); err != nil {
				t.Errorf("duration %q: %v", fields["duration"], err)
			}
			if _, err := time.Parse(accessTimeLayout, fields["time"]); err != nil {
				t.Errorf("time %q: %v", fields["time"], err)
			}
			// The id is rosti's own, the one the app got, never the client's.
			if id := fields["request_id"]; !strings.HasPrefix(id, p.ids.prefix) {
				t.Errorf("request_id %q is not one of rosti's", id)
			}
			if !strings.HasPrefix(fields["remote"], "127.0.0.1:") {
				t.Errorf("remote %q, want the client's address", fields["remote"])
			}
		})
	}
}

// BenchmarkAccessLogLine is what the access log costs a fast path request:
// the line formatted and copied into a batching writer.
func BenchmarkAccessLogLine(b *testing.B) {
	out := logbuf.New(io.Discard, 100*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = out.Serve(ctx) }()
	l := newAccessLog(out)
	method, host, uri, id := []byte("GET"), []byte("web.apps.example.com"), []byte("/static/app.js?v=3"), []byte("4f0e8a61c2d9b7e3-1a2b")
	var line []byte
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		line = l.begin(line[:0], start, "web", "203.0.113.7:51234", method, host, uri, id)
		line = l.end(line, 200, 1234, time.Since(start))
	}
}
