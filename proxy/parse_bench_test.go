package proxy

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// BenchmarkFastPathParse is the fast path's own parsing work for one
// exchange, without sockets: a browser's request head, and a chunked
// response head and body copied to the client.
func BenchmarkFastPathParse(b *testing.B) {
	request := []byte("GET /static/app.js?v=3%2E1 HTTP/1.1\r\nHost: bench.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Referer: https://bench.example.com/\r\nCookie: session=0123456789abcdef; theme=dark\r\n" +
		"Connection: keep-alive\r\n\r\n")
	response := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\nDate: Mon, 30 Nov 2026 09:00:00 GMT\r\n" +
		"Cache-Control: max-age=3600\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"400\r\n" + string(bytes.Repeat([]byte("x"), 1024)) + "\r\n" +
		"400\r\n" + string(bytes.Repeat([]byte("y"), 1024)) + "\r\n0\r\n\r\n")
	fc := &frontConn{}
	src := bytes.NewReader(response)
	br := bufio.NewReaderSize(src, 16<<10)
	bw := bufio.NewWriterSize(io.Discard, 8<<10)
	b.SetBytes(int64(len(request) + len(response)))
	b.ReportAllocs()
	for b.Loop() {
		var rq reqHead
		if !fc.parseRequest(request, &rq) {
			b.Fatal("request refused")
		}
		src.Reset(response)
		br.Reset(src)
		head, err := peekResponseHead(br)
		if err != nil {
			b.Fatal(err)
		}
		var rh respHead
		if err := fc.parseResponse(head, &rh); err != nil {
			b.Fatal(err)
		}
		br.Discard(rh.size)
		if _, rerr, werr := copyChunked(bw, br); rerr != nil || werr != nil {
			b.Fatal(rerr, werr)
		}
	}
}
