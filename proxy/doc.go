// Package proxy owns the HTTP and HTTPS listeners of rosti: host based
// routing to app containers, the panel handler, certificates (ACME through
// certmagic, and uploaded ones) and the health check used for zero-downtime
// switches.
//
// It knows nothing about the store or the runtime: platform hands it a full
// routing table with SetRoutes whenever apps, domains or containers change,
// and the proxy swaps it in atomically. The proxy never decides by itself
// which names deserve a certificate; it asks the ACME CA only for names in
// the current table (no on-demand issuance), and the TLS handshake fails for
// any other name.
//
// Choices worth knowing:
//   - An HTTP request for a TLS route is redirected (308) to HTTPS only once a
//     certificate for that host is in hand, so a new app is reachable over
//     plain HTTP while its certificate is being issued. ACME HTTP-01
//     challenges are always answered, never redirected.
//   - Wildcard hosts ("*.example.com") match exactly one extra label and are
//     served over HTTP only, unless an uploaded certificate covers them.
//   - X-Forwarded-For, -Host, -Proto and X-Real-Ip sent by the client are
//     dropped and set from the connection. The app always gets rosti's own
//     X-Request-Id, the one in the access log: an id chosen by a client
//     could collide with other requests' and poison the logs. A client's
//     (or a load balancer's) X-Request-Id reaches the app as
//     X-Client-Request-Id when there is exactly one, of at most 128
//     letters, digits and -_.:+/=; anything else, and any
//     X-Client-Request-Id the client sent itself, is dropped.
//   - Plain HTTP/1.1 requests for apps take a fast path (front.go,
//     fastpath.go): a goroutine per connection parses the request head in
//     place in its read buffer, writes it with the forwarding headers
//     rewritten to a pooled upstream connection, and copies the response
//     head and body back with their own framing (Content-Length, chunked
//     verbatim, or until EOF with Connection: close), flushing whenever the
//     upstream has nothing more buffered, so SSE and other streams are
//     never held back. It allocates almost nothing per request. Measured on
//     the 2-core benchmark machine, net/http's server with
//     httputil.ReverseProxy cost about 38 µs of CPU per request against
//     nginx's 17 µs; the fast path costs 18 µs (21 µs with the access log
//     on), which moved rosti from 0.4-0.6 × nginx's throughput to 0.8-1.0 ×.
//     The fast path only ever accepts a strict subset of HTTP/1.1, and
//     means by it what net/http does: differential fuzz tests
//     (fuzz_test.go) parse the same bytes with both, requests and app
//     responses (framing, chunks, trailers, forwarded headers). For
//     everything else it leaves the request unread and hands the connection
//     to the net/http server (the same handler as before), which then
//     serves that connection to its end: upgrades (websockets), Expect,
//     Transfer-Encoding on requests, HTTP/1.0, absolute URIs, heads over
//     8 KiB (net/http answers 431 past 64 KiB), malformed heads (net/http
//     answers 400), the panel, unknown hosts, stopped apps, HTTPS
//     redirects and ACME challenges.
//     fasthttp was the other candidate. It would have meant rewriting the
//     panel, ACME, websocket and SSE handling against its API, or adapting
//     them. The peek-and-hand-off design keeps every unusual case on the
//     tested net/http path, and the fast path itself is small.
//   - On the fast path an idle pooled upstream connection the app has
//     closed is skipped by a non-blocking peek before a request with a
//     body is sent (such a request cannot be sent twice), and a request
//     without a body is sent again on a fresh connection. A client that
//     goes away while the app is still thinking is only noticed when the
//     answer is written.
//   - The fast path reads and writes its sockets with raw system calls
//     (rawio.go), still waiting on Go's poller, so that each one does not
//     wake the runtime's monitor thread: at half of its peak that cut the
//     proxy's CPU per request against an app container from about 70 µs
//     to 50 µs, and at its peak from about 60 µs to 40 µs.
//   - HTTPS runs the same front (tlsfront.go). The handshake happens in
//     the connection's goroutine over the same raw socket I/O; HTTP/1.1
//     on TLS then takes the fast path (X-Forwarded-Proto https), and a
//     connection it hands over carries its TLS state, so net/http sets
//     Request.TLS as before. A client that chose h2 through ALPN is
//     served by the proxy's own HTTP/2 front (h2front.go, h2response.go),
//     which forwards to apps over the same HTTP/1.1 keep-alive pool.
//     HTTP/2 keeps HTTP/1.1's limits: the 64 KiB header limit (as
//     SETTINGS_MAX_HEADER_LIST_SIZE; past it a 431, far past it the
//     connection ends), the two-minute idle timeout, at most 128 streams
//     in flight per connection (nginx's default; one more is refused with
//     REFUSED_STREAM, and a reset stream counts until its handler has
//     returned, so resetting streams starts no more: the "rapid reset"
//     attack), request bodies flow-controlled to 1 MiB per connection,
//     GOAWAY on shutdown.
//   - What TLS costs, from CPU profiles and /proc CPU time per request
//     against an app container on the 2-core machine
//     (bench/proxy/https.sh). Through net/http an HTTPS keep-alive
//     request made 0.70 × nginx's throughput; on the fast path it costs
//     30-44 µs of CPU, nginx 31-46 µs. A new connection per request
//     costs rosti 250-345 µs and nginx 370-500 µs: half of rosti's is
//     the handshake, and most of that is the X25519 key agreement
//     (clients resume their sessions, so no certificate or signature is
//     sent), then system calls; allocations are about 5 %, so no
//     handshake state is pooled. Key agreement is crypto/tls's default:
//     browsers that offer the post-quantum X25519MLKEM768 get it (more
//     work per handshake than X25519, not measured here, which nginx on
//     Debian 12's OpenSSL 3.0 is limited to); wrk offers X25519 only. Certificates from ACME are ECDSA P-256
//     (certmagic's default, made explicit): an RSA 2048 signature costs
//     several times as much, for clients that cannot resume. Session
//     tickets are crypto/tls's own: one tls.Config for the life of the
//     proxy, whose ticket keys crypto/tls makes and rotates (a new key a
//     day, each accepted for 7 days, never written to disk), as nginx
//     does without ssl_session_ticket_key. Both TLS 1.2 and 1.3 resume.
//   - HTTP/2 through net/http's HTTP/2 server cost about twice nginx's
//     CPU per request (48-81 µs against 22-41 µs): a serve loop, a
//     goroutine per stream, about six hand-offs between goroutines per
//     request, header maps, and a handler waiting for its HEADERS frame to
//     be written before it sends the DATA. Batching its writes (see
//     batchWriter) and skipping httputil.ReverseProxy (h2direct.go) took
//     it to 48-60 µs, 0.65-0.89 × nginx's throughput. The proxy's own
//     front replaced it: the connection's goroutine reads and handles
//     every frame (x/net/http2's Framer and hpack); each request runs the
//     usual handler on a worker goroutine of the connection (kept for the
//     connection's life, so their stacks, grown by the handler, are not
//     grown again per request: that was a tenth of the profile) with a
//     ResponseWriter that encodes the answer itself and writes HEADERS and
//     the first DATA together; all frames go through one buffer under a
//     mutex, flushed by whoever writes last, so that the answers of
//     several streams leave in one TLS record and, through batchWriter,
//     one system call. GET and HEAD requests then go to the app with a
//     hand-written request head and response parser (h2upstream.go)
//     instead of http.Request.Write and http.ReadResponse (a tenth of the
//     CPU, mostly allocations). Against the local upstream that took
//     rosti from 48 to 29-33 µs per request (nginx 25-28 µs, with as many
//     system calls per request as rosti or more), against an app
//     container from 68 to 40-50 µs (nginx 38-49 µs), 0.92-1.98 ×
//     nginx's throughput on a shared, overloaded machine. net/http's
//     HTTP/2 server stays only for tests to compare with
//     (TestHTTP2FrontMatchesNetHTTP and its raw-frame twin send the same
//     requests, good and malformed, to both).
//   - Access log lines are formatted by hand (accesslog.go) in the layout
//     of slog's text handler and written in the request's goroutine to a
//     writer that batches them (internal/logbuf), which writes them out
//     from its own goroutine: a request pays for a copy under a mutex, and
//     a slow log output holds requests up only once a megabyte of lines is
//     waiting; lines are never dropped. Through slog, with a goroutine
//     taking the lines off a channel, the log cost about 3.5 µs of CPU per
//     request and a wake-up of that goroutine, a tenth of the proxy's
//     whole cost per request, and more with GOMAXPROCS 1.
//   - A request body the client does not finish (malformed chunks, cut
//     short) is the client's fault: the client gets 400, the access log
//     says so, nothing is logged against the app, and the upstream
//     connection that carried part of it is closed, never reused. Both
//     paths tell it apart from an upstream failure: the fast path by where
//     the copy failed, the net/http path by a wrapper around the body in
//     upstreamTransport (httputil.ReverseProxy would answer 502).
//   - A request without a body whose upstream refuses the connection is
//     retried on the next upstream: nothing reached the app, so this is safe
//     for any method, and it keeps restarts free of failed requests.
package proxy
