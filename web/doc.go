// Package web is rosti's built-in web UI: server-rendered pages
// (html/template, assets embedded with go:embed, one stylesheet and a small
// plain script for the live parts) on top of platform, like the API
// dialects. It owns its routes, its templates and the browser's side of a
// sign-in (cookies, CSRF tokens; failed sign-ins are limited by platform,
// with the same limits as API logins); it
// holds no state of its own: sessions live in the store through platform,
// and every page is answered through platform calls with the signed-in
// user as the actor. It never touches the store, the runtime or the proxy.
//
// Security: sessions are server-side (the store keeps the sha256 of the
// cookie's secret); cookies are HttpOnly, SameSite=Lax, and Secure with the
// __Host- prefix over HTTPS; every POST carries a CSRF token derived from
// the session's secret (or, before signing in, from a pre-session cookie),
// and a POST without the right one is refused with 403; the
// Content-Security-Policy allows no inline script and nothing from other
// origins.
package web
