package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2ResponseWriter is the http.ResponseWriter of an HTTP/2 stream
// (h2front.go). It answers as net/http's HTTP/2 server does: the header
// as it was at WriteHeader, a Date when the handler set none, a sniffed
// Content-Type when it set none, a Content-Length when the whole body was
// written before the handler returned, trailers declared through
// "Trailer" or http.TrailerPrefix. The body is buffered up to
// h2ResponseChunk, so that a small answer is one HEADERS and one DATA
// frame, written together.
type h2ResponseWriter struct {
	st     *h2Stream
	header http.Header

	status      int
	wroteHeader bool // the final status is set
	sentHeader  bool // its HEADERS frame is out
	fields      []hpack.HeaderField
	hasType     bool
	hasDate     bool
	hasEncoding bool
	length      int64 // the handler's Content-Length, or -1
	trailers    []string

	buf     []byte
	written int64
}

func (w *h2ResponseWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *h2ResponseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wroteHeader {
		return
	}
	if code < 200 {
		if code != http.StatusSwitchingProtocols {
			w.writeInformational(code)
		}
		return
	}
	w.status, w.wroteHeader, w.length = code, true, -1
	w.fields = make([]hpack.HeaderField, 0, len(w.header)+3) // +3: what send adds
	for k, vv := range w.header {
		switch k {
		case "Content-Length":
			if len(vv) > 0 {
				if n, err := strconv.ParseUint(vv[0], 10, 63); err == nil {
					w.length = int64(n)
				}
			}
			continue
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
			continue
		case "Content-Type":
			w.hasType = true
		case "Date":
			w.hasDate = true
		case "Content-Encoding":
			w.hasEncoding = len(vv) > 0 && vv[0] != ""
		case "Trailer":
			for _, v := range vv {
				for _, t := range strings.Split(v, ",") {
					w.declareTrailer(strings.TrimSpace(t))
				}
			}
		}
		w.fields = appendFields(w.fields, k, vv)
	}
}

func appendFields(fields []hpack.HeaderField, k string, vv []string) []hpack.HeaderField {
	if !httpguts.ValidHeaderFieldName(k) {
		return fields
	}
	l := lowerH2Key(k)
	for _, v := range vv {
		if httpguts.ValidHeaderFieldValue(v) {
			fields = append(fields, hpack.HeaderField{Name: l, Value: v})
		}
	}
	return fields
}

func (w *h2ResponseWriter) declareTrailer(k string) {
	k = http.CanonicalHeaderKey(k)
	if k == "" || !httpguts.ValidTrailerHeader(k) {
		return
	}
	for _, t := range w.trailers {
		if t == k {
			return
		}
	}
	w.trailers = append(w.trailers, k)
}

func (w *h2ResponseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.isHead() {
		if !w.sentHeader && len(w.buf) < 512 {
			w.buf = append(w.buf, p[:min(len(p), 512-len(w.buf))]...)
		}
		return len(p), nil
	}
	if len(w.buf)+len(p) < h2ResponseChunk {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if err := w.send(false); err != nil {
		return 0, err
	}
	if err := w.sendData(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *h2ResponseWriter) isHead() bool { return w.st.req.Method == http.MethodHead }

// FlushError sends the header and what is buffered.
func (w *h2ResponseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.send(false)
}

func (w *h2ResponseWriter) Flush() { _ = w.FlushError() }

// finish ends the response once the handler has returned.
func (w *h2ResponseWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	for k, vv := range w.header {
		if t, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			w.declareTrailer(t)
			w.header[http.CanonicalHeaderKey(t)] = vv
		}
	}
	if w.length >= 0 && w.written != w.length && !w.isHead() && bodyAllowed(w.status) {
		w.reset(http2.ErrCodeInternal)
		return
	}
	hasTrailers := false
	for _, t := range w.trailers {
		if len(w.header[t]) > 0 {
			hasTrailers = true
		}
	}
	if w.send(!hasTrailers) != nil || !hasTrailers || w.isHead() {
		return // an answer to HEAD ended with its header
	}
	var fields []hpack.HeaderField
	for _, t := range w.trailers {
		fields = appendFields(fields, t, w.header[t])
	}
	w.writeHeaders(0, fields, true)
}

func (w *h2ResponseWriter) reset(code http2.ErrCode) {
	sc := w.st.sc
	sc.mu.Lock()
	sc.resetLocked(w.st, code)
	sc.mu.Unlock()
}

// send writes the header if it is not out yet and the buffered body;
// end ends the stream.
func (w *h2ResponseWriter) send(end bool) error {
	if !w.sentHeader {
		w.sentHeader = true
		fields := w.fields
		length := w.length
		if length < 0 && end && bodyAllowed(w.status) && (len(w.buf) > 0 || !w.isHead()) {
			length = int64(len(w.buf))
		}
		if length >= 0 {
			fields = append(fields, hpack.HeaderField{Name: "content-length", Value: strconv.FormatInt(length, 10)})
		}
		if !w.hasType && !w.hasEncoding && bodyAllowed(w.status) && len(w.buf) > 0 {
			fields = append(fields, hpack.HeaderField{Name: "content-type", Value: http.DetectContentType(w.buf)})
		}
		if !w.hasDate {
			fields = append(fields, hpack.HeaderField{Name: "date", Value: time.Now().UTC().Format(http.TimeFormat)})
		}
		w.fields = fields
		if w.isHead() {
			w.buf = w.buf[:0]
			return w.writeHeaders(w.status, fields, true)
		}
		endWithHeader := end && len(w.buf) == 0
		return w.writeHeadersAndData(fields, endWithHeader, end)
	}
	if w.isHead() || len(w.buf) == 0 && !end {
		return nil
	}
	err := w.sendData(w.buf, end)
	w.buf = w.buf[:0]
	return err
}

// writeHeadersAndData writes the HEADERS frame and, in the same go when
// the windows allow, the first DATA frame of what is buffered.
func (w *h2ResponseWriter) writeHeadersAndData(fields []hpack.HeaderField, endWithHeader, end bool) error {
	st, sc := w.st, w.st.sc
	data := w.buf
	w.buf = w.buf[:0]
	sc.mu.Lock()
	if st.reset || sc.dead {
		sc.mu.Unlock()
		return errH2StreamReset
	}
	maxFrame := sc.peerMaxFrame
	n := 0
	if len(data) > 0 {
		n = int(min(int64(len(data)), int64(maxFrame), st.sendWindow, sc.sendWindow))
		n = max(n, 0)
		st.sendWindow -= int64(n)
		sc.sendWindow -= int64(n)
	}
	sc.mu.Unlock()
	sc.lockWrite()
	w.encodeHeaders(w.status, fields, endWithHeader, maxFrame)
	if n > 0 {
		sc.fr.WriteData(st.id, end && n == len(data), data[:n])
	}
	if err := sc.unlockWrite(); err != nil {
		return err
	}
	if n == len(data) {
		return nil
	}
	return w.sendData(data[n:], end)
}

func (w *h2ResponseWriter) writeHeaders(status int, fields []hpack.HeaderField, end bool) error {
	sc := w.st.sc
	sc.mu.Lock()
	if w.st.reset || sc.dead {
		sc.mu.Unlock()
		return errH2StreamReset
	}
	maxFrame := sc.peerMaxFrame
	sc.mu.Unlock()
	sc.lockWrite()
	w.encodeHeaders(status, fields, end, maxFrame)
	return sc.unlockWrite()
}

// encodeHeaders writes a header block (status 0: trailers) in HEADERS
// and CONTINUATION frames; under the write lock.
func (w *h2ResponseWriter) encodeHeaders(status int, fields []hpack.HeaderField, end bool, maxFrame int) {
	sc := w.st.sc
	sc.hbuf.Reset()
	if status != 0 {
		sc.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusString(status)})
	}
	for _, f := range fields {
		sc.henc.WriteField(f)
	}
	block := sc.hbuf.Bytes()
	first := true
	for first || len(block) > 0 {
		frag := block[:min(len(block), maxFrame)]
		block = block[len(frag):]
		if first {
			sc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: w.st.id, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
			first = false
		} else {
			sc.fr.WriteContinuation(w.st.id, len(block) == 0, frag)
		}
	}
}

// sendData writes p in DATA frames as the flow-control windows allow;
// end ends the stream with the last one.
func (w *h2ResponseWriter) sendData(p []byte, end bool) error {
	st, sc := w.st, w.st.sc
	for {
		sc.mu.Lock()
		for len(p) > 0 && !st.reset && !sc.dead && (st.sendWindow <= 0 || sc.sendWindow <= 0) {
			st.cond.Wait()
		}
		if st.reset || sc.dead {
			sc.mu.Unlock()
			return errH2StreamReset
		}
		n := int(min(int64(len(p)), int64(sc.peerMaxFrame), st.sendWindow, sc.sendWindow))
		st.sendWindow -= int64(n)
		sc.sendWindow -= int64(n)
		sc.mu.Unlock()
		last := end && n == len(p)
		sc.lockWrite()
		sc.fr.WriteData(st.id, last, p[:n])
		if err := sc.unlockWrite(); err != nil {
			return err
		}
		p = p[n:]
		if len(p) == 0 && (last || !end) {
			return nil
		}
	}
}

// writeInformational sends a 1xx answer (103 Early Hints and the like)
// with the header as it is now.
func (w *h2ResponseWriter) writeInformational(code int) {
	var fields []hpack.HeaderField
	for k, vv := range w.header {
		fields = appendFields(fields, k, vv)
	}
	w.writeHeaders(code, fields, false)
}

// writeContinue answers Expect: 100-continue, once the handler reads
// the body.
func (w *h2ResponseWriter) writeContinue() {
	w.writeHeaders(http.StatusContinue, nil, false)
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// statusString avoids an allocation for the usual codes.
func statusString(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 206:
		return "206"
	case 301:
		return "301"
	case 302:
		return "302"
	case 304:
		return "304"
	case 308:
		return "308"
	case 400:
		return "400"
	case 404:
		return "404"
	case 500:
		return "500"
	case 502:
		return "502"
	}
	return strconv.Itoa(code)
}
