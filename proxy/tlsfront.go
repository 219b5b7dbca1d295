package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// The HTTPS listener runs the same front as the HTTP one (front.go,
// fastpath.go) with a TLS handshake first, in the connection's own
// goroutine. A client that negotiated HTTP/2 (ALPN h2) is handed at once,
// as a *tls.Conn nothing has read from, to the net/http server, whose
// HTTP/2 server keeps it to the end. HTTP/1.1 on TLS takes the fast path;
// what the fast path leaves is handed over as on plain HTTP, with the TLS
// state attached so that net/http sets Request.TLS.

// tlsHandshakeTimeout bounds the handshake as net/http's server did
// (its ReadHeaderTimeout).
const tlsHandshakeTimeout = readHeaderTimeout

// h2Protos are the ALPN protocols offered: HTTP/2 first, as browsers and
// nginx with http2 on prefer it.
var h2Protos = []string{"h2", "http/1.1"}

// newTLSConfig is the one TLS configuration of the HTTPS listener, for
// the life of the proxy: crypto/tls then issues session tickets under
// keys it makes and rotates itself (a new key every 24 hours, each
// accepted for 7 days, in memory only, as nginx without
// ssl_session_ticket_key), so a client coming back resumes its session
// with no signature and no certificate sent.
func newTLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		GetCertificate: getCert,
		NextProtos:     h2Protos,
		MinVersion:     tls.VersionTLS12,
	}
}

// rawNetConn is a TCP connection whose reads and writes go through rawIO,
// for crypto/tls to sit on.
type rawNetConn struct {
	net.Conn
	rw io.ReadWriter
}

func (c *rawNetConn) Read(b []byte) (int, error)  { return c.rw.Read(b) }
func (c *rawNetConn) Write(b []byte) (int, error) { return c.rw.Write(b) }

// startTLS runs the server handshake on fc's connection; nil when it
// failed (the failure is logged at debug level, as net/http does).
func (fc *frontConn) startTLS() *tls.Conn {
	tc := tls.Server(&rawNetConn{Conn: fc.c, rw: fc.io}, fc.f.tls)
	fc.c.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		fc.f.p.errorLog.Printf("http: TLS handshake error from %s: %v", fc.remote, err)
		return nil
	}
	fc.c.SetDeadline(time.Time{})
	return tc
}

// looksLikeHTTP is net/http's test of a plain HTTP request sent to the
// HTTPS port.
func looksLikeHTTP(hdr []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "OPTIO"} {
		if bytes.HasPrefix(hdr, []byte(m)) {
			return true
		}
	}
	return false
}

// handedTLSConn is a TLS connection handed to net/http with the fast
// path's buffered bytes in front. net/http recognises only a *tls.Conn
// itself as TLS; ConnectionState makes it set Request.TLS all the same.
type handedTLSConn struct {
	handedConn
	tc *tls.Conn
}

func (c *handedTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// h2Limits keeps HTTP/2 clients within what an HTTP/1.1 client may do:
// the server's MaxHeaderBytes bounds a request's header list and its
// IdleTimeout an idle connection, as for HTTP/1.1; a connection carries
// at most as many concurrent streams as nginx allows (128), each a
// request in flight to an app. net/http's HTTP/2 server also limits
// resets, pings and settings frames a client may send (CVE-2023-44487
// and kin).
func h2Limits() *http.HTTP2Config {
	return &http.HTTP2Config{MaxConcurrentStreams: 128}
}
