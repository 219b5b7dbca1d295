// Command httpserver is the small static HTTP server of the tests' app
// image. On $PORT it answers:
//
//	/              "hello from <hostname>"
//	/whoami        "uid=N gid=N"
//	/read?path=P   the content of P
//	/write?path=P&data=D  writes D to P
//	/alloc?mb=N    allocates and touches N MiB, then answers
//	/dial?addr=A   "ok" if a TCP connection to A opens within 2s, else the error
//	/env?name=K    the value of K
//	/header?name=K the request's values of header K, one a line
//	/upload        "read N bytes" of the request body, or the read error
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	var hog [][]byte
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		host, _ := os.Hostname()
		fmt.Fprintf(w, "hello from %s", host)
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "uid=%d gid=%d", os.Getuid(), os.Getgid())
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile(r.URL.Query().Get("path"), []byte(r.URL.Query().Get("data")), 0o644); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		for range mb {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			hog = append(hog, b)
		}
		fmt.Fprintf(w, "allocated %d MiB", len(hog))
	})
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 2*time.Second)
		if err != nil {
			fmt.Fprint(w, err.Error())
			return
		}
		c.Close()
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("/header", func(w http.ResponseWriter, r *http.Request) {
		for _, v := range r.Header.Values(r.URL.Query().Get("name")) {
			fmt.Fprintln(w, v)
		}
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "read %d bytes", n)
	})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
