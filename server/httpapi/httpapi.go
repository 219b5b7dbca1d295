// Package httpapi is what every REST dialect of rosti shares: the one
// mapping from the error vocabulary to HTTP status, token authentication,
// request ids, panic recovery and bounded JSON decoding. It owns no routes
// and shapes no error bodies: each dialect renders errors its own way from
// the status this package decides.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/store"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// RequestIDHeader carries the id that ties a response to its log lines.
const RequestIDHeader = "X-Request-Id"

// ErrTooLarge is returned for bodies over MaxBodyBytes.
var ErrTooLarge = errors.New("request body is larger than 1 MiB")

// Status is the one place where an error becomes an HTTP status.
func Status(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, platform.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, platform.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, platform.ErrThrottled):
		return http.StatusTooManyRequests
	case errors.Is(err, store.ErrNoSpace):
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// PublicMessage is what a client may read of err: the error itself for the
// vocabulary's errors, a generic line with the request id for anything
// else, which is logged in full instead.
func PublicMessage(log *slog.Logger, w http.ResponseWriter, r *http.Request, err error) (int, string) {
	status := Status(err)
	var throttled *platform.ThrottledError
	if errors.As(err, &throttled) {
		w.Header().Set("Retry-After", strconv.Itoa(throttled.RetrySeconds()))
	}
	if status == http.StatusInsufficientStorage {
		// The client can do nothing about it; the operator must hear of it.
		log.Warn("request failed: the disk is full", "request_id", w.Header().Get(RequestIDHeader), "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status != http.StatusInternalServerError {
		return status, store.Message(err)
	}
	id := w.Header().Get(RequestIDHeader)
	log.Error("request failed", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
	return status, fmt.Sprintf("internal server error (request id %s)", id)
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WithRequestID gives every response an id, kept from the client when it is
// a short token and made fresh otherwise.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r)
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Recover turns a panic in a handler into a logged 500.
func Recover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("handler panic", "request_id", w.Header().Get(RequestIDHeader), "path", r.URL.Path, "panic", v)
				http.Error(w, "internal server error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// TokenFrom reads a token from an Authorization header in any of the
// dialects' schemes: "Token t" (Rosti), "token t" (Drycc), "Bearer t" (tsuru).
func TokenFrom(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok {
		return "", false
	}
	switch strings.ToLower(scheme) {
	case "token", "bearer":
		token = strings.TrimSpace(token)
		return token, token != ""
	}
	return "", false
}

// Authenticator resolves a token to its user.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (store.User, error)
}

// User authenticates the request.
func User(a Authenticator, r *http.Request) (store.User, error) {
	token, ok := TokenFrom(r)
	if !ok {
		return store.User{}, fmt.Errorf("authentication credentials were not provided; send 'Authorization: Token <token>': %w", platform.ErrUnauthorized)
	}
	return a.Authenticate(r.Context(), token)
}

// DecodeObject reads a JSON object body of at most MaxBodyBytes into its
// fields, so dialects can tell an absent field from a zero one and report a
// wrong type per field. An empty body is an empty object.
func DecodeObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, ErrTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("read request body: %v: %w", err, store.ErrInvalid)
	}
	fields := map[string]json.RawMessage{}
	if len(strings.TrimSpace(string(body))) == 0 {
		return fields, nil
	}
	if err := json.Unmarshal(body, &fields); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, fmt.Errorf("request body must be a JSON object: %w", store.ErrInvalid)
		}
		return nil, fmt.Errorf("malformed JSON: %v: %w", err, store.ErrInvalid)
	}
	return fields, nil
}

// ClientAddress is the IP address the request came from. Forwarding
// headers are not believed: the panel is served in-process by the proxy,
// so the connection's own address is the client's.
func ClientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
