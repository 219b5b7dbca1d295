package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The HTTP/2 front serves the connections whose client chose h2 through
// ALPN, in place of net/http's HTTP/2 server, which cost about twice
// nginx's CPU per request (a serve loop, a goroutine per stream, about
// six hand-offs between goroutines per request).
//
// The connection's own goroutine reads and handles every frame. A
// request goes to a worker goroutine of the connection (one is started
// when none is free; they live as long as the connection, so their
// stacks, grown by the handler, are not grown again for every request)
// and runs the proxy's usual handler (Proxy.ServeHTTP: apps, error
// pages, redirects, the panel) with an http.ResponseWriter that encodes
// the response into frames itself. Frames go through one buffered writer
// under a mutex; whoever writes last flushes, so that the answers of
// several streams leave in one TLS record and, through the batchWriter
// under it, one system call.
//
// Limits are those net/http's server applied to HTTP/2 here: at most 128
// streams in flight per connection (counted until their handler returns,
// so resetting streams does not start more handlers: CVE-2023-44487),
// a 64 KiB header list (a bigger one answers 431; one much bigger ends the
// connection, CVE-2023-45288), request bodies flow-controlled to 1 MiB per
// connection, two minutes idle, GOAWAY on shutdown.

const (
	h2MaxStreams       = 128
	h2MaxHeaderList    = 64 << 10
	h2RecvWindow       = 1 << 20 // per stream and per connection
	h2CreditThreshold  = 32 << 10
	h2ResponseChunk    = 16 << 10
	h2GoAwayGrace      = time.Second
	h2DefaultWindow    = 65535
	h2DefaultFrameSize = 16384
	h2MaxWindow        = 1<<31 - 1
)

var h2ClientPreface = []byte(http2.ClientPreface)

var (
	errH2StreamReset = errors.New("http2: stream reset")
	errH2ConnClosed  = errors.New("http2: connection closed")
)

// h2Conn is one HTTP/2 connection.
type h2Conn struct {
	p        *Proxy
	fc       *frontConn
	tc       *tls.Conn
	tlsState *tls.ConnectionState
	fr       *http2.Framer
	work     chan *h2Stream // idle workers wait here
	hdec     *hpack.Decoder

	// The write side: frames, the header encoder, the buffer.
	wmu     sync.Mutex
	bw      *bufio.Writer
	henc    *hpack.Encoder
	hbuf    bytes.Buffer
	werr    error
	waiting atomic.Int32 // writers waiting for wmu; the last one flushes

	mu           sync.Mutex
	streams      map[uint32]*h2Stream
	sendWindow   int64 // the connection's window for response DATA
	peerWindow   int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame int
	recvWindow   int64 // request DATA the client may still send
	recvCredit   int64 // request DATA read by handlers, not yet given back
	live         int   // streams whose handler has not returned
	lastID       uint32
	goingAway    bool
	goAwayID     uint32
	dead         bool
}

// h2Stream is one request. Its fields are guarded by sc.mu but for req
// and rw, which belong to the handler.
type h2Stream struct {
	sc   *h2Conn
	id   uint32
	cond sync.Cond // waits for send window, body data, a reset
	req  *http.Request
	rw   h2ResponseWriter

	sendWindow   int64
	recvWindow   int64
	recvCredit   int64
	remoteClosed bool // END_STREAM received
	reset        bool // RST_STREAM sent or received
	handlerDone  bool
	ctx          streamContext

	// The request body, when there is one.
	body          []byte
	bodyRead      int
	bodyErr       error // io.EOF once END_STREAM came
	bodyAbandoned bool  // the handler returned: data is dropped
	declared      int64 // Content-Length, or -1
	received      int64
	needContinue  bool
	// invalid is why a request net/http would answer 400 is refused.
	invalid error
}

// serveH2 serves an HTTP/2 connection to its end.
func (fc *frontConn) serveH2(tc *tls.Conn) {
	f := fc.f
	defer f.untrack(fc)
	if !fc.state.CompareAndSwap(connIdle, connActive) {
		tc.Close()
		return
	}
	state := tc.ConnectionState()
	sc := &h2Conn{
		p:            f.p,
		fc:           fc,
		tc:           tc,
		tlsState:     &state,
		work:         make(chan *h2Stream),
		streams:      map[uint32]*h2Stream{},
		sendWindow:   h2DefaultWindow,
		peerWindow:   h2DefaultWindow,
		peerMaxFrame: h2DefaultFrameSize,
		recvWindow:   h2RecvWindow,
	}
	br := frontReaders.Get().(*bufio.Reader)
	br.Reset(tc)
	sc.bw = bufio.NewWriterSize(tc, h2ResponseChunk+1024)
	sc.fr = http2.NewFramer(sc.bw, br)
	sc.hdec = hpack.NewDecoder(4096, nil)
	sc.fr.ReadMetaHeaders = sc.hdec
	sc.fr.MaxHeaderListSize = h2MaxHeaderList
	sc.fr.SetReuseFrames()
	sc.henc = hpack.NewEncoder(&sc.hbuf)
	if !f.trackH2(sc) {
		sc.goAway(http2.ErrCodeNo)
	}
	err := sc.serve(br)
	f.untrackH2(sc)
	sc.mu.Lock()
	sc.dead = true
	for _, st := range sc.streams {
		st.cond.Broadcast()
		st.ctx.cancel()
	}
	sc.mu.Unlock()
	close(sc.work)
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		sc.writeGoAway(http2.ErrCode(ce))
	}
	sc.wmu.Lock()
	if sc.werr == nil {
		sc.werr = errH2ConnClosed
	}
	sc.wmu.Unlock()
	tc.Close()
	br.Reset(nil)
	frontReaders.Put(br)
}

// serve reads frames until the connection ends; it returns a
// ConnectionError when the client broke the protocol.
func (sc *h2Conn) serve(br *bufio.Reader) error {
	c := sc.fc.c
	c.SetReadDeadline(time.Now().Add(readHeaderTimeout))
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(br, preface[:]); err != nil || !bytes.Equal(preface[:], h2ClientPreface) {
		return err
	}
	sc.lockWrite()
	sc.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: h2MaxStreams},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderList},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2RecvWindow},
	)
	sc.fr.WriteWindowUpdate(0, h2RecvWindow-h2DefaultWindow)
	sc.unlockWrite()
	first := true
	for {
		f, err := sc.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A malformed header block: the stream is refused,
				// the connection goes on.
				sc.mu.Lock()
				if se.StreamID > sc.lastID {
					sc.lastID = se.StreamID
				}
				sc.mu.Unlock()
				sc.writeReset(se.StreamID, se.Code)
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				return err
			}
			if errors.Is(err, http2.ErrFrameTooLarge) {
				return http2.ConnectionError(http2.ErrCodeFrameSize)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				sc.goAway(http2.ErrCodeNo) // idle; without effect when already sent
			}
			return nil
		}
		if first {
			if _, ok := f.(*http2.SettingsFrame); !ok {
				return http2.ConnectionError(http2.ErrCodeProtocol)
			}
			first = false
			c.SetReadDeadline(time.Now().Add(clientIdleTimeout))
		}
		if err := sc.handle(f); err != nil {
			return err
		}
	}
}

func (sc *h2Conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return sc.handleSettings(f)
	case *http2.MetaHeadersFrame:
		return sc.handleHeaders(f)
	case *http2.DataFrame:
		return sc.handleData(f)
	case *http2.WindowUpdateFrame:
		return sc.handleWindowUpdate(f)
	case *http2.PingFrame:
		if f.StreamID != 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if !f.IsAck() {
			sc.lockWrite()
			sc.fr.WritePing(true, f.Data)
			sc.unlockWrite()
		}
	case *http2.RSTStreamFrame:
		sc.mu.Lock()
		if f.StreamID > sc.lastID {
			sc.mu.Unlock()
			return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
		}
		if st := sc.streams[f.StreamID]; st != nil {
			sc.closeStreamLocked(st)
		}
		sc.mu.Unlock()
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			sc.writeReset(f.StreamID, http2.ErrCodeProtocol)
		}
	case *http2.GoAwayFrame:
		sc.goAway(http2.ErrCodeNo)
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	// Unknown frame types are ignored, as RFC 9113 asks.
	return nil
}

func (sc *h2Conn) handleSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	if f.NumSettings() > 100 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			sc.mu.Lock()
			delta := int64(s.Val) - sc.peerWindow
			sc.peerWindow = int64(s.Val)
			for _, st := range sc.streams {
				st.sendWindow += delta
				if st.sendWindow > h2MaxWindow {
					sc.mu.Unlock()
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				st.cond.Broadcast()
			}
			sc.mu.Unlock()
		case http2.SettingMaxFrameSize:
			sc.mu.Lock()
			sc.peerMaxFrame = int(s.Val)
			sc.mu.Unlock()
		case http2.SettingHeaderTableSize:
			sc.wmu.Lock()
			sc.henc.SetMaxDynamicTableSizeLimit(s.Val)
			sc.wmu.Unlock()
		}
		return nil
	}); err != nil {
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			return err
		}
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	sc.lockWrite()
	sc.fr.WriteSettingsAck()
	sc.unlockWrite()
	return nil
}

func (sc *h2Conn) handleWindowUpdate(f *http2.WindowUpdateFrame) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if f.StreamID == 0 {
		if f.Increment == 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		sc.sendWindow += int64(f.Increment)
		if sc.sendWindow > h2MaxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		for _, st := range sc.streams {
			st.cond.Broadcast()
		}
		return nil
	}
	if f.StreamID > sc.lastID {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st := sc.streams[f.StreamID]
	if st == nil || st.reset {
		return nil
	}
	if f.Increment == 0 || st.sendWindow+int64(f.Increment) > h2MaxWindow {
		code := http2.ErrCodeProtocol
		if f.Increment != 0 {
			code = http2.ErrCodeFlowControl
		}
		sc.resetLocked(st, code)
		return nil
	}
	st.sendWindow += int64(f.Increment)
	st.cond.Broadcast()
	return nil
}

// handleData adds a DATA frame's payload to its request body. Flow
// control counts the whole payload, padding included; what the handler
// will never read is given back at once.
func (sc *h2Conn) handleData(f *http2.DataFrame) error {
	size := int64(f.Header().Length)
	data := f.Data()
	sc.mu.Lock()
	if f.StreamID > sc.lastID {
		sc.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if size > sc.recvWindow {
		sc.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	sc.recvWindow -= size
	st := sc.streams[f.StreamID]
	if st == nil || st.reset || st.remoteClosed {
		// A stream that ended or was reset: the frame was in flight.
		closedRemote := st != nil && st.remoteClosed && !st.reset
		sc.mu.Unlock()
		sc.giveBack(nil, size)
		if closedRemote {
			sc.writeReset(f.StreamID, http2.ErrCodeStreamClosed)
		}
		return nil
	}
	if size > st.recvWindow {
		sc.resetLocked(st, http2.ErrCodeFlowControl)
		sc.mu.Unlock()
		sc.giveBack(nil, size)
		return nil
	}
	st.recvWindow -= size
	st.received += int64(len(data))
	if st.declared >= 0 && (st.received > st.declared || f.StreamEnded() && st.received != st.declared) {
		sc.resetLocked(st, http2.ErrCodeProtocol)
		sc.mu.Unlock()
		sc.giveBack(nil, size)
		return nil
	}
	unread := size - int64(len(data)) // padding
	if st.bodyAbandoned {
		unread = size
	} else {
		st.body = append(st.body, data...)
	}
	if f.StreamEnded() {
		sc.endRemoteLocked(st)
	}
	st.cond.Broadcast()
	sc.mu.Unlock()
	if unread > 0 {
		sc.giveBack(st, unread)
	}
	return nil
}

// endRemoteLocked notes the END_STREAM of st's request.
func (sc *h2Conn) endRemoteLocked(st *h2Stream) {
	st.remoteClosed = true
	if st.bodyErr == nil {
		st.bodyErr = io.EOF
	}
	if st.handlerDone {
		delete(sc.streams, st.id)
	}
}

// giveBack returns n bytes of flow-control window to the client, for the
// connection and for st (nil: the connection only), once enough has
// gathered to be worth a frame.
func (sc *h2Conn) giveBack(st *h2Stream, n int64) {
	sc.mu.Lock()
	var connInc, streamInc int64
	sc.recvCredit += n
	if sc.recvCredit >= h2CreditThreshold {
		connInc, sc.recvCredit = sc.recvCredit, 0
		sc.recvWindow += connInc
	}
	if st != nil && !st.reset && !st.remoteClosed {
		st.recvCredit += n
		if st.recvCredit >= h2CreditThreshold {
			streamInc, st.recvCredit = st.recvCredit, 0
			st.recvWindow += streamInc
		}
	}
	sc.mu.Unlock()
	if connInc == 0 && streamInc == 0 {
		return
	}
	sc.lockWrite()
	if connInc > 0 {
		sc.fr.WriteWindowUpdate(0, uint32(connInc))
	}
	if streamInc > 0 {
		sc.fr.WriteWindowUpdate(st.id, uint32(streamInc))
	}
	sc.unlockWrite()
}

func (sc *h2Conn) handleHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	sc.mu.Lock()
	if st := sc.streams[id]; st != nil {
		// Trailers of a request body.
		if st.reset {
			sc.mu.Unlock()
			return nil
		}
		if st.remoteClosed {
			sc.mu.Unlock()
			return http2.ConnectionError(http2.ErrCodeStreamClosed)
		}
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			sc.resetLocked(st, http2.ErrCodeProtocol)
			sc.mu.Unlock()
			return nil
		}
		if st.declared >= 0 && st.received != st.declared {
			sc.resetLocked(st, http2.ErrCodeProtocol)
			sc.mu.Unlock()
			return nil
		}
		if t := st.req.Trailer; t != nil {
			for _, hf := range f.RegularFields() {
				k := canonicalH2Key(hf.Name)
				if _, declared := t[k]; declared {
					t[k] = append(t[k], hf.Value)
				}
			}
		}
		sc.endRemoteLocked(st)
		st.cond.Broadcast()
		sc.mu.Unlock()
		return nil
	}
	if id <= sc.lastID {
		sc.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	sc.lastID = id
	if sc.goingAway && id > sc.goAwayID {
		sc.mu.Unlock()
		return nil // ignored, as the GOAWAY said
	}
	if sc.live >= h2MaxStreams {
		sc.mu.Unlock()
		sc.writeReset(id, http2.ErrCodeRefusedStream)
		return nil
	}
	sc.mu.Unlock()

	st := &h2Stream{sc: sc, id: id, declared: -1}
	st.cond.L = &sc.mu
	req, err := sc.newRequest(st, f)
	if err != nil {
		sc.writeReset(id, http2.ErrCodeProtocol)
		return nil
	}
	st.req = req
	st.rw.st = st

	sc.mu.Lock()
	st.sendWindow = sc.peerWindow
	st.recvWindow = h2RecvWindow
	if f.StreamEnded() {
		st.remoteClosed = true
		st.bodyErr = io.EOF
	}
	if sc.live == 0 {
		sc.fc.c.SetReadDeadline(time.Time{})
	}
	sc.live++
	sc.streams[id] = st
	sc.mu.Unlock()

	select {
	case sc.work <- st:
	default:
		go sc.worker(st)
	}
	return nil
}

// worker runs streams' handlers until the connection ends.
func (sc *h2Conn) worker(st *h2Stream) {
	for ok := true; ok; st, ok = <-sc.work {
		sc.run(st)
	}
}

func (sc *h2Conn) run(st *h2Stream) {
	defer sc.streamDone(st)
	defer func() {
		if e := recover(); e != nil {
			if e != http.ErrAbortHandler {
				sc.p.errorLog.Printf("http2: panic serving %s: %v", sc.fc.remote, e)
			}
			sc.mu.Lock()
			sc.resetLocked(st, http2.ErrCodeInternal)
			sc.mu.Unlock()
		}
	}()
	switch {
	case st.req.Method == "":
		// A header list over the limit: net/http's answer.
		st.rw.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
		io.WriteString(&st.rw, "<h1>HTTP Error 431</h1><p>Request Header Fields Too Large</p>")
	case st.invalid != nil:
		http.Error(&st.rw, st.invalid.Error(), http.StatusBadRequest)
	default:
		sc.p.ServeHTTP(&st.rw, st.req)
	}
	st.rw.finish()
}

// streamDone ends st's handler: what the client still sends for it is
// dropped; a request body the handler did not read to the end is reset
// (NO_ERROR), as RFC 9113 allows once the response is complete.
func (sc *h2Conn) streamDone(st *h2Stream) {
	st.ctx.cancel()
	sc.mu.Lock()
	st.handlerDone = true
	st.bodyAbandoned = true
	unread := int64(len(st.body) - st.bodyRead)
	st.body = nil
	resetBody := !st.remoteClosed && !st.reset
	if resetBody {
		st.reset = true
	}
	if st.remoteClosed || st.reset {
		delete(sc.streams, st.id)
	}
	sc.live--
	if sc.live == 0 {
		wait := clientIdleTimeout
		if sc.goingAway {
			wait = h2GoAwayGrace
		}
		sc.fc.c.SetReadDeadline(time.Now().Add(wait))
	}
	sc.mu.Unlock()
	if resetBody {
		sc.writeReset(st.id, http2.ErrCodeNo)
	}
	if unread > 0 {
		sc.giveBack(nil, unread)
	}
}

// resetLocked resets st (RST_STREAM code) and ends its handler's wait.
func (sc *h2Conn) resetLocked(st *h2Stream, code http2.ErrCode) {
	if st.reset {
		return
	}
	sc.closeStreamLocked(st)
	go sc.writeReset(st.id, code) // not under sc.mu: a write may block
}

// closeStreamLocked ends st for good, as the client's RST_STREAM does:
// its body reads fail, its handler's wait ends and its context is done.
func (sc *h2Conn) closeStreamLocked(st *h2Stream) {
	st.reset = true
	if st.bodyErr == nil || st.bodyErr == io.EOF {
		st.bodyErr = errH2StreamReset
	}
	if st.handlerDone {
		delete(sc.streams, st.id)
	}
	st.cond.Broadcast()
	st.ctx.cancel()
}

// goAway tells the client that no stream after the last one it opened
// will be served; the connection ends when those are done.
func (sc *h2Conn) goAway(code http2.ErrCode) {
	sc.mu.Lock()
	if sc.goingAway {
		sc.mu.Unlock()
		return
	}
	sc.goingAway = true
	sc.goAwayID = sc.lastID
	idle := sc.live == 0
	sc.mu.Unlock()
	sc.writeGoAway(code)
	if idle {
		sc.fc.c.SetReadDeadline(time.Now().Add(h2GoAwayGrace))
	}
}

func (sc *h2Conn) writeGoAway(code http2.ErrCode) {
	sc.mu.Lock()
	last := sc.lastID
	sc.mu.Unlock()
	sc.lockWrite()
	sc.fr.WriteGoAway(last, code, nil)
	sc.unlockWrite()
}

func (sc *h2Conn) writeReset(id uint32, code http2.ErrCode) {
	sc.lockWrite()
	sc.fr.WriteRSTStream(id, code)
	sc.unlockWrite()
}

// lockWrite takes the write side. unlockWrite flushes unless another
// writer is waiting, which will flush for both.
func (sc *h2Conn) lockWrite() {
	sc.waiting.Add(1)
	sc.wmu.Lock()
	sc.waiting.Add(-1)
}

func (sc *h2Conn) unlockWrite() error {
	err := sc.werr
	if err == nil && sc.waiting.Load() == 0 {
		if err = sc.bw.Flush(); err != nil {
			sc.werr = err
		}
	}
	sc.wmu.Unlock()
	return err
}

// newRequest makes the http.Request of a HEADERS frame, with the rules
// of net/http's HTTP/2 server; an error is a malformed request.
func (sc *h2Conn) newRequest(st *h2Stream, f *http2.MetaHeadersFrame) (*http.Request, error) {
	ctx := &st.ctx
	if f.Truncated {
		r := &http.Request{Method: "", Header: http.Header{}, Body: http.NoBody, RemoteAddr: sc.fc.remote, TLS: sc.tlsState}
		return r.WithContext(ctx), nil
	}
	var method, path, scheme, authority string
	regular := f.RegularFields()
	header := make(http.Header, len(regular))
	values := make([]string, len(regular))
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":path":
			path = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		default: // :protocol (extended CONNECT) is not offered
			return nil, errBadRequest
		}
	}
	for i, hf := range regular {
		k := canonicalH2Key(hf.Name)
		if vv := header[k]; vv != nil {
			header[k] = append(vv, hf.Value)
			continue
		}
		values[i] = hf.Value
		header[k] = values[i : i+1 : i+1]
	}
	isConnect := method == http.MethodConnect
	if method == "" || isConnect && (path != "" || scheme != "") || !isConnect && (path == "" || scheme == "") {
		return nil, errBadRequest
	}
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"} {
		if _, ok := header[k]; ok && st.invalid == nil {
			st.invalid = fmt.Errorf("request header %q is not valid in HTTP/2", k)
		}
	}
	if te := header["Te"]; len(te) > 1 || len(te) == 1 && te[0] != "trailers" && te[0] != "" {
		st.invalid = errors.New(`request header "TE" may only be "trailers" in HTTP/2`)
	}
	if httpguts.HeaderValuesContainsToken(header["Expect"], "100-continue") {
		delete(header, "Expect")
		st.needContinue = !f.StreamEnded()
	}
	if cookies := header["Cookie"]; len(cookies) > 1 {
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	var trailer http.Header
	for _, v := range header["Trailer"] {
		for _, key := range strings.Split(v, ",") {
			switch key = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(key)); key {
			case "Transfer-Encoding", "Trailer", "Content-Length":
			default:
				if trailer == nil {
					trailer = http.Header{}
				}
				trailer[key] = nil
			}
		}
	}
	delete(header, "Trailer")
	if host := header["Host"]; len(host) == 1 {
		if authority == "" {
			authority = host[0]
		} else if host[0] != authority {
			return nil, errBadRequest
		}
		delete(header, "Host")
	} else if len(host) > 1 {
		return nil, errBadRequest
	}
	if strings.IndexByte(authority, '@') >= 0 && (scheme == "http" || scheme == "https") ||
		authority != "" && !httpguts.ValidHostHeader(authority) {
		return nil, errBadRequest
	}
	var u *url.URL
	requestURI := path
	if isConnect {
		u, requestURI = &url.URL{Host: authority}, authority
	} else {
		if path[0] != '/' && path != "*" {
			return nil, errBadRequest
		}
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return nil, errBadRequest
		}
	}
	r := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     header,
		Body:       http.NoBody,
		Host:       authority,
		RemoteAddr: sc.fc.remote,
		RequestURI: requestURI,
		Trailer:    trailer,
	}
	if scheme == "https" {
		r.TLS = sc.tlsState
	}
	if !f.StreamEnded() {
		r.Body = (*h2Body)(st)
		r.ContentLength = -1
		if vv, ok := header["Content-Length"]; ok {
			if cl, err := strconv.ParseUint(vv[0], 10, 63); err == nil {
				r.ContentLength = int64(cl)
				st.declared = int64(cl)
			} else {
				r.ContentLength = 0
			}
		}
	}
	return r.WithContext(ctx), nil
}

var errBadRequest = errors.New("http2: malformed request")

// h2Body is a stream's request body, as the handler reads it.
type h2Body h2Stream

func (b *h2Body) Read(p []byte) (int, error) {
	st := (*h2Stream)(b)
	sc := st.sc
	sc.mu.Lock()
	if st.needContinue {
		st.needContinue = false
		if len(st.body) == st.bodyRead && st.bodyErr == nil {
			sc.mu.Unlock()
			st.rw.writeContinue()
			sc.mu.Lock()
		}
	}
	for len(st.body) == st.bodyRead && st.bodyErr == nil && !sc.dead {
		st.cond.Wait()
	}
	if len(st.body) > st.bodyRead {
		n := copy(p, st.body[st.bodyRead:])
		st.bodyRead += n
		if st.bodyRead == len(st.body) {
			st.body, st.bodyRead = st.body[:0], 0
		}
		sc.mu.Unlock()
		sc.giveBack(st, int64(n))
		return n, nil
	}
	err := st.bodyErr
	if err == nil {
		err = errH2ConnClosed
	}
	sc.mu.Unlock()
	if err != io.EOF {
		err = fmt.Errorf("%w: %w", io.ErrUnexpectedEOF, err)
	}
	return 0, err
}

func (b *h2Body) Close() error {
	st := (*h2Stream)(b)
	st.sc.mu.Lock()
	unread := int64(len(st.body) - st.bodyRead)
	st.body, st.bodyRead = nil, 0
	st.bodyAbandoned = true
	st.sc.mu.Unlock()
	if unread > 0 {
		st.sc.giveBack(nil, unread)
	}
	return nil
}

// canonicalH2Key is the canonical form of a header name as it arrives
// in HTTP/2 (lower case), without allocating for common ones.
func canonicalH2Key(lower string) string {
	if k, ok := commonCanonical[lower]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(lower)
}

// lowerH2Key is a header name as HTTP/2 sends it.
func lowerH2Key(k string) string {
	if l, ok := commonLower[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// commonCanonical and commonLower map the usual header names between
// their canonical and HTTP/2 forms; read-only after init.
var commonCanonical, commonLower = func() (map[string]string, map[string]string) {
	names := []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges", "Age",
		"Access-Control-Allow-Credentials", "Access-Control-Allow-Headers", "Access-Control-Allow-Methods",
		"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Max-Age",
		"Access-Control-Request-Headers", "Access-Control-Request-Method", "Allow", "Authorization",
		"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type", "Cookie", "Date",
		"Etag", "Expect", "Expires", "From", "Host", "If-Match", "If-Modified-Since", "If-None-Match",
		"If-Range", "If-Unmodified-Since", "Last-Modified", "Link", "Location", "Max-Forwards", "Origin",
		"Pragma", "Priority", "Proxy-Authenticate", "Proxy-Authorization", "Range", "Referer", "Refresh",
		"Retry-After", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Sec-Fetch-Dest",
		"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Te", "Trailer", "Transfer-Encoding", "Upgrade-Insecure-Requests",
		"User-Agent", "Vary", "Via", "Www-Authenticate", "X-Content-Type-Options", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Frame-Options", "X-Real-Ip", "X-Request-Id",
		"X-Requested-With", "X-Xss-Protection",
	}
	canon, lower := make(map[string]string, len(names)), make(map[string]string, len(names))
	for _, n := range names {
		l := strings.ToLower(n)
		canon[l], lower[n] = n, l
	}
	return canon, lower
}()

// streamContext is a stream's request context, done once the stream is
// reset, its handler has returned or its connection ended. It has an
// AfterFunc method of its own, which context.AfterFunc and
// context.WithCancel use in place of their machinery: the exchange with
// the app registers a function per request, and through a context made
// by context.WithCancel that cost allocations, a lock and a map entry in
// the connection's context on every request.
type streamContext struct {
	mu    sync.Mutex
	done  chan struct{} // made when first asked for
	err   error
	funcs []func() // nil once run or stopped
}

func (c *streamContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *streamContext) Value(any) any { return nil }

func (c *streamContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *streamContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

// AfterFunc runs f in its own goroutine once c is done, as
// context.AfterFunc does.
func (c *streamContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	i := len(c.funcs)
	c.funcs = append(c.funcs, f)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil || c.funcs[i] == nil {
			return false
		}
		c.funcs[i] = nil
		return true
	}
}

func (c *streamContext) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	funcs := c.funcs
	c.funcs = nil
	c.mu.Unlock()
	for _, f := range funcs {
		if f != nil {
			go f()
		}
	}
}
