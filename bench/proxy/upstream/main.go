// Command upstream is the benchmark's backend: a static Go HTTP server
// answering every request with the same small body.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	size := flag.Int("size", 64, "response body size in bytes")
	flag.Parse()
	body := make([]byte, *size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	length := []string{strconv.Itoa(len(body))}
	contentType := []string{"text/plain"}
	srv := &http.Server{
		Addr:              *addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Length"] = length
			h["Content-Type"] = contentType
			_, _ = w.Write(body)
		}),
	}
	log.Fatal(srv.ListenAndServe())
}
