package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// roundTripH2 sends a GET or HEAD without a body, prepared by serveH2, to
// the app over the upstream pool, as retryingTransport and
// upstreamTransport do (another upstream after a refused connection, a
// fresh connection after a stale pooled one), but writes the request head
// and parses the response head itself: http.Request.Write and
// http.ReadResponse were about a tenth of the proxy's CPU per HTTP/2
// request, most of it allocations.
func (g *appGroup) roundTripH2(out *http.Request) (*http.Response, error) {
	t := g.p.transport
	ctx := out.Context()
	tries := len(g.upstreams)
	for {
		addr := out.URL.Host
		c, reused, err := t.conn(ctx, addr)
		if err != nil {
			if !isDialError(err) {
				return nil, err
			}
			g.markDown(addr)
			if tries--; tries <= 0 || ctx.Err() != nil {
				return nil, err
			}
			out.URL.Host = g.pick().addr
			continue
		}
		resp, err := exchangeH2(t, c, out)
		if err == nil {
			return resp, nil
		}
		c.conn.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if !reused || !staleConnError(err) {
			return nil, err
		}
	}
}

// exchangeH2 writes out's head on c and reads the response head; the
// body gives c back to the pool once read to its end.
func exchangeH2(t *upstreamTransport, c *upstreamConn, out *http.Request) (*http.Response, error) {
	stop := afterFunc(out.Context(), func() { c.conn.SetDeadline(aLongTimeAgo) })
	writeRequestHead(c.bw, out)
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, err
	}
	if t.responseHeaderTimeout > 0 {
		c.conn.SetReadDeadline(time.Now().Add(t.responseHeaderTimeout))
	}
	resp, framing, err := readResponseHead(c.br, out)
	if err != nil {
		stop()
		return nil, err
	}
	if t.responseHeaderTimeout > 0 {
		c.conn.SetReadDeadline(time.Time{})
	}
	body := &upstreamBody{c: c, t: t, host: out.URL.Host, stop: stop, reusable: !resp.Close}
	switch {
	case framing == framingNone:
		body.ReadCloser, body.eof = http.NoBody, true
	case framing == framingChunked:
		body.ReadCloser = &chunkedBody{br: c.br, r: httputil.NewChunkedReader(c.br), resp: resp}
	case framing >= 0:
		body.ReadCloser = &lengthBody{r: c.br, left: int64(framing)}
	default:
		body.ReadCloser = io.NopCloser(c.br)
		body.reusable = false
	}
	resp.Body = body
	return resp, nil
}

// afterFunc is context.AfterFunc, without its own context and
// registration when ctx has an AfterFunc method (an HTTP/2 stream's
// streamContext does).
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// writeRequestHead writes what http.Request.Write writes for a GET or
// HEAD without a body: the request line, Host, User-Agent (none when
// empty), the other header fields.
func writeRequestHead(bw *bufio.Writer, r *http.Request) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	if ua := r.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		bw.WriteString("User-Agent: ")
		bw.WriteString(textproto.TrimString(ua[0]))
		bw.WriteString("\r\n")
	}
	for k, vv := range r.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(textproto.TrimString(v))
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
}

// Response body framings; a non-negative one is a Content-Length.
const (
	framingNone    = -1 // HEAD, 1xx, 204, 304
	framingChunked = -2
	framingEOF     = -3 // until the app closes the connection
)

var errMalformedResponse = errors.New("malformed HTTP response from the app")

// readResponseHead reads the final response head (1xx answers other than
// 101 are skipped, as readFinalResponse does) and returns it with its
// body framing.
func readResponseHead(br *bufio.Reader, req *http.Request) (*http.Response, int64, error) {
	for {
		resp, framing, err := readOneResponseHead(br, req)
		if err != nil || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, framing, err
		}
	}
}

func readOneResponseHead(br *bufio.Reader, req *http.Request) (*http.Response, int64, error) {
	head, err := peekResponseHeadString(br)
	if err != nil {
		return nil, 0, err
	}
	// One string for the whole head: names and values are slices of it.
	lines := strings.Split(strings.TrimRight(head, "\r\n"), "\n")
	line := strings.TrimSuffix(lines[0], "\r")
	// HTTP/1.x NNN reason
	if len(line) < 12 || !strings.HasPrefix(line, "HTTP/1.") || (line[7] != '0' && line[7] != '1') ||
		line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return nil, 0, fmt.Errorf("%w: status line %q", errMalformedResponse, line)
	}
	code, err := strconv.Atoi(line[9:12])
	if err != nil || code < 100 {
		return nil, 0, fmt.Errorf("%w: status line %q", errMalformedResponse, line)
	}
	resp := &http.Response{
		StatusCode: code,
		Status:     line[9:],
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, len(lines)-1),
		Request:    req,
	}
	if line[7] == '0' {
		resp.Proto, resp.ProtoMinor, resp.Close = "HTTP/1.0", 0, true
	}
	values := make([]string, len(lines)-1)
	length, chunked := int64(-1), false
	for i, line := range lines[1:] {
		line = strings.TrimSuffix(line, "\r")
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || line[0] == ' ' || line[0] == '\t' {
			return nil, 0, fmt.Errorf("%w: header line %q", errMalformedResponse, line)
		}
		name := line[:colon]
		for j := range len(name) {
			if !isTokenChar(name[j]) {
				return nil, 0, fmt.Errorf("%w: header name %q", errMalformedResponse, name)
			}
		}
		key, ok := commonResponseKey[name]
		if !ok {
			key = http.CanonicalHeaderKey(name)
		}
		value := textproto.TrimString(line[colon+1:])
		if vv := resp.Header[key]; vv != nil {
			resp.Header[key] = append(vv, value)
		} else {
			values[i] = value
			resp.Header[key] = values[i : i+1 : i+1]
		}
		switch key {
		case "Content-Length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || length >= 0 && n != length {
				return nil, 0, fmt.Errorf("%w: Content-Length %q", errMalformedResponse, value)
			}
			length = n
		case "Transfer-Encoding":
			if !strings.EqualFold(value, "chunked") || chunked {
				return nil, 0, fmt.Errorf("%w: Transfer-Encoding %q", errMalformedResponse, value)
			}
			chunked = true
		case "Connection":
			if httpHeaderHasToken(value, "close") {
				resp.Close = true
			} else if resp.ProtoMinor == 0 && httpHeaderHasToken(value, "keep-alive") {
				resp.Close = false
			}
		}
	}
	switch {
	case req.Method == http.MethodHead || code < 200 || code == http.StatusNoContent || code == http.StatusNotModified:
		resp.ContentLength = length
		if code < 200 || code == http.StatusNoContent {
			resp.ContentLength = 0
		}
		if req.Method == http.MethodHead && length < 0 {
			resp.ContentLength = -1
		}
		return resp, framingNone, nil
	case chunked:
		delete(resp.Header, "Content-Length")
		resp.ContentLength = -1
		resp.TransferEncoding = []string{"chunked"}
		resp.Trailer = trailerKeys(resp.Header["Trailer"])
		delete(resp.Header, "Transfer-Encoding")
		return resp, framingChunked, nil
	case length >= 0:
		resp.ContentLength = length
		if length == 0 {
			return resp, framingNone, nil
		}
		return resp, length, nil
	}
	resp.ContentLength = -1
	resp.Close = true
	return resp, framingEOF, nil
}

// peekResponseHeadString reads a response head, up to and including the
// empty line, as one string; a head must fit in br's buffer.
func peekResponseHeadString(br *bufio.Reader) (string, error) {
	for {
		buf, _ := br.Peek(br.Buffered())
		if end := headEnd(buf); end > 0 {
			head := string(buf[:end])
			br.Discard(end)
			return head, nil
		}
		if br.Buffered() == br.Size() {
			return "", fmt.Errorf("%w: head over %d bytes", errMalformedResponse, br.Size())
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return "", responseReadError(err)
		}
	}
}

// headEnd is the length of the head at the start of buf (through its
// empty line, CRLF or bare LF), or 0 when it is not complete.
func headEnd(buf []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		if i < len(buf) && buf[i] == '\n' {
			return i + 1
		}
		if i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n' {
			return i + 2
		}
	}
}

func responseReadError(err error) error {
	if errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("%w: header line too long", errMalformedResponse)
	}
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func httpHeaderHasToken(v, token string) bool {
	for len(v) > 0 {
		var t string
		t, v, _ = cutByte(v, ',')
		if equalFold([]byte(textproto.TrimString(t)), token) {
			return true
		}
	}
	return false
}

func cutByte(s string, sep byte) (before, after string, found bool) {
	if i := bytes.IndexByte([]byte(s), sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// trailerKeys are the trailers a response announces, as http.ReadResponse
// reads them (nil values until the body has been read).
func trailerKeys(vv []string) http.Header {
	var t http.Header
	for _, v := range vv {
		for len(v) > 0 {
			var k string
			k, v, _ = cutByte(v, ',')
			k = http.CanonicalHeaderKey(textproto.TrimString(k))
			switch k {
			case "", "Transfer-Encoding", "Trailer", "Content-Length":
				continue
			}
			if t == nil {
				t = http.Header{}
			}
			t[k] = nil
		}
	}
	return t
}

// lengthBody is a body of a known length.
type lengthBody struct {
	r    io.Reader
	left int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }

// chunkedBody is a chunked body; at its end the trailer section is read
// into resp.Trailer (the announced fields only, as net/http does).
type chunkedBody struct {
	br   *bufio.Reader
	r    io.Reader
	resp *http.Response
	done bool
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		if terr := b.readTrailers(); terr != nil {
			return n, terr
		}
		b.done = true
	}
	return n, err
}

func (b *chunkedBody) readTrailers() error {
	for {
		line, err := b.br.ReadSlice('\n')
		if err != nil {
			return responseReadError(err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return fmt.Errorf("%w: trailer line %q", errMalformedResponse, line)
		}
		k := http.CanonicalHeaderKey(string(line[:colon]))
		if b.resp.Trailer == nil {
			b.resp.Trailer = http.Header{}
		}
		b.resp.Trailer[k] = append(b.resp.Trailer[k], string(bytes.TrimSpace(line[colon+1:])))
	}
}

func (b *chunkedBody) Close() error { return nil }

// commonResponseKey interns the header names apps usually send, in the
// case they usually send them; read-only after init.
var commonResponseKey = func() map[string]string {
	m := make(map[string]string, len(commonCanonical))
	for _, k := range commonCanonical {
		m[k] = k
	}
	for _, k := range []string{"Keep-Alive", "Connection", "X-Powered-By", "X-Runtime", "ETag", "Content-type"} {
		m[k] = http.CanonicalHeaderKey(k)
	}
	return m
}()
