package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
)

// HTTP/2 requests without a body (nearly all of them: page loads, assets,
// API reads) skip httputil.ReverseProxy: serveH2 does what it does for
// them, through the same transport, without its deep copy of the request
// and its headers, and without growing a new stream goroutine's stack
// through ReverseProxy's large frames. In a profile of HTTP/2 load that
// was about a seventh of the proxy's CPU. Anything less common (a body, a
// query string ReverseProxy would rewrite, TE) stays on ReverseProxy.

// directH2 reports whether serveH2 can take r.
func directH2(r *http.Request) bool {
	if r.ProtoMajor != 2 || r.ContentLength != 0 || r.Method == http.MethodConnect {
		return false
	}
	if _, te := r.Header["Te"]; te {
		return false // "TE: trailers" is passed on by ReverseProxy
	}
	// ReverseProxy re-encodes a query with semicolons or bad escapes.
	return !strings.ContainsAny(r.URL.RawQuery, ";%")
}

// h2HopHeaders are dropped from requests and responses, as ReverseProxy
// drops them; forwardedHeaders are set from the connection by rewrite.
var (
	h2HopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}
	forwardedHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}
)

// serveH2 forwards r as ReverseProxy would. r and its headers become the
// upstream request: nothing reads them after the handler but the access
// log, which needs only the method, host, URI and request id.
func (g *appGroup) serveH2(w http.ResponseWriter, r *http.Request) {
	out := new(http.Request)
	*out = *r // keeps r's context
	u := *r.URL
	out.URL = &u
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.Body, out.Close, out.RequestURI = nil, false, ""
	h := r.Header
	removeHopHeaders(h)
	for _, k := range forwardedHeaders {
		delete(h, k)
	}
	g.rewrite(&httputil.ProxyRequest{In: r, Out: out})
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = emptyValue // or Go's transport would add its own
	}
	var resp *http.Response
	var err error
	if out.Method == http.MethodGet || out.Method == http.MethodHead {
		resp, err = g.roundTripH2(out)
	} else {
		resp, err = g.rp.Transport.RoundTrip(out)
	}
	if err != nil {
		g.fail(w, r, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		g.fail(w, r, errors.New("app switched protocols on a request that asked for no upgrade"))
		return
	}
	removeHopHeaders(resp.Header)
	wh := w.Header()
	for k, v := range resp.Header {
		wh[k] = v
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		wh["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	if announced > 0 {
		rc.Flush() // as ReverseProxy does
	}
	// As ReverseProxy: a body of unknown length (a stream) is flushed
	// after every read, a known length when the handler ends.
	flush := resp.ContentLength == -1 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	buf := g.p.buffers.Get()
	defer g.p.buffers.Put(buf)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the client went away: Close drops the upstream connection
			}
			if flush {
				rc.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			g.p.log.Warn("upstream error in response body", "app", g.app, "host", r.Host, "err", rerr)
			// Headers are out: only resetting the stream tells the client.
			panic(http.ErrAbortHandler)
		}
	}
	if len(resp.Trailer) == announced {
		for k, v := range resp.Trailer {
			wh[k] = v
		}
		return
	}
	for k, v := range resp.Trailer {
		wh[http.TrailerPrefix+k] = v
	}
}

var emptyValue = []string{""}

// removeHopHeaders drops hop-by-hop headers and those named in Connection.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
	for _, k := range h2HopHeaders {
		delete(h, k)
	}
}
