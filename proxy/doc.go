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
//     dropped and set from the connection. An incoming X-Request-Id is kept
//     when it is short and made of safe characters (so an ID set by a load
//     balancer in front stays traceable); otherwise the proxy makes one.
//   - Streamed responses (SSE, chunked bodies of unknown length) are flushed
//     on every write by httputil.ReverseProxy itself; responses of known
//     length are copied with pooled buffers without per-write flushes, which
//     is what keeps the hot path fast.
//   - A request without a body whose upstream refuses the connection is
//     retried on the next upstream: nothing reached the app, so this is safe
//     for any method, and it keeps restarts free of failed requests.
package proxy
