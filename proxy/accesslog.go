package proxy

import (
	"io"
	"strconv"
	"sync"
	"time"
)

// accessLog writes one line per proxied request, in the layout of slog's
// text handler so that it reads like the rest of rosti's log:
//
//	time=2026-11-23T17:00:00.123Z level=INFO msg=request component=access app=web remote=10.0.0.1:5123 method=GET host=web.example.com uri=/ request_id=4f…-1 status=200 bytes=64 duration=512µs
//
// The line is formatted by hand into a buffer the caller reuses and given
// to the writer in one Write: going through slog cost about 3.5 µs per
// request and a goroutine hand-off, which is a tenth of the proxy's whole
// cost per request. The writer is expected to buffer (internal/logbuf).
type accessLog struct {
	w    io.Writer
	bufs sync.Pool // *[]byte for the net/http path
}

func newAccessLog(w io.Writer) *accessLog {
	return &accessLog{w: w, bufs: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}}
}

const accessTimeLayout = "2006-01-02T15:04:05.000Z07:00" // slog's

// begin appends the part of a line known when the request arrives.
func (l *accessLog) begin(b []byte, start time.Time, app, remote string, method, host, uri, id []byte) []byte {
	b = append(b, "time="...)
	b = start.AppendFormat(b, accessTimeLayout)
	b = append(b, " level=INFO msg=request component=access app="...)
	b = appendLogValue(b, app)
	b = append(b, " remote="...)
	b = appendLogValue(b, remote)
	b = append(b, " method="...)
	b = appendLogValue(b, method)
	b = append(b, " host="...)
	b = appendLogValue(b, host)
	b = append(b, " uri="...)
	b = appendLogValue(b, uri)
	b = append(b, " request_id="...)
	return appendLogValue(b, id)
}

// end completes a line begun by begin and writes it.
func (l *accessLog) end(b []byte, status int, bytes int64, took time.Duration) []byte {
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, bytes, 10)
	b = append(b, " duration="...)
	b = appendDuration(b, took)
	b = append(b, '\n')
	_, _ = l.w.Write(b)
	return b[:0]
}

// appendLogValue quotes v when slog's text handler would (empty, spaces,
// quotes, '=', anything outside printable ASCII), so a client cannot
// forge fields or lines through its URI or Host.
func appendLogValue[T string | []byte](b []byte, v T) []byte {
	if len(v) == 0 {
		return append(b, `""`...)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '=' {
			return strconv.AppendQuote(b, string(v))
		}
	}
	return append(b, v...)
}

// appendDuration writes d like time.Duration.String does below a minute
// ("512.25µs", "1.5ms", "2.003s"), without its allocation.
func appendDuration(b []byte, d time.Duration) []byte {
	switch {
	case d == 0:
		return append(b, "0s"...)
	case d < time.Microsecond:
		return append(strconv.AppendInt(b, int64(d), 10), "ns"...)
	case d < time.Millisecond:
		return append(strconv.AppendFloat(b, float64(d)/1e3, 'f', -1, 64), "µs"...)
	case d < time.Second:
		return append(strconv.AppendFloat(b, float64(d)/1e6, 'f', -1, 64), "ms"...)
	default:
		return append(strconv.AppendFloat(b, d.Seconds(), 'f', -1, 64), 's')
	}
}
