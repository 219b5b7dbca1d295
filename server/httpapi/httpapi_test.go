package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/store"
)

func TestStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 200},
		{"not found, wrapped", fmt.Errorf("app 3: %w", store.ErrNotFound), 404},
		{"validation", platform.FieldError("name", "bad"), 400},
		{"conflict", &store.ConflictError{What: "domain", Value: "x"}, 409},
		{"unauthorized", fmt.Errorf("no: %w", platform.ErrUnauthorized), 401},
		{"forbidden", platform.ErrForbidden, 403},
		{"too large", ErrTooLarge, 413},
		{"disk full", fmt.Errorf("create app: %w", store.ErrNoSpace), 507},
		{"anything else", errors.New("disk on fire"), 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Status(tc.err); got != tc.want {
				t.Fatalf("Status(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestTokenFrom(t *testing.T) {
	tests := []struct {
		header, token string
		ok            bool
	}{
		{"Token abc", "abc", true},
		{"token abc", "abc", true},
		{"Bearer abc", "abc", true},
		{"BEARER  abc ", "abc", true},
		{"Basic abc", "", false},
		{"Token", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", tc.header)
			token, ok := TokenFrom(r)
			if token != tc.token || ok != tc.ok {
				t.Fatalf("got %q %v, want %q %v", token, ok, tc.token, tc.ok)
			}
		})
	}
}

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		name, body string
		fields     int
		status     int
	}{
		{"object", `{"a":1,"b":"x"}`, 2, 200},
		{"empty body", ``, 0, 200},
		{"malformed", `{"a":`, 0, 400},
		{"array", `[1]`, 0, 400},
		{"too large", `{"a":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 0, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			fields, err := DecodeObject(httptest.NewRecorder(), r)
			if got := Status(err); got != tc.status || len(fields) != tc.fields {
				t.Fatalf("got %d fields, status %d (%v); want %d, %d", len(fields), got, err, tc.fields, tc.status)
			}
		})
	}
}

func TestRequestIDIsKeptOnlyWhenSafe(t *testing.T) {
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"safe", "abc-123_X", true},
		{"with a space", "abc 123", false},
		{"too long", strings.Repeat("a", 65), false},
		{"none", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set(RequestIDHeader, tc.sent)
			WithRequestID(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, r)
			got := rec.Header().Get(RequestIDHeader)
			if got == "" || (got == tc.sent) != tc.kept {
				t.Fatalf("sent %q, answered %q", tc.sent, got)
			}
		})
	}
}

func TestFieldsTypeErrors(t *testing.T) {
	raw, err := DecodeObject(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(
		`{"port":"80","plan":"x","name":5,"domains":"a.cz b.cz","keys":"k1\nk2","on":"yes"}`)))
	if err != nil {
		t.Fatal(err)
	}
	f := NewFields(raw)
	if p := f.Int("port"); p == nil || *p != 80 {
		t.Errorf("numeric string: %v", p)
	}
	if d := f.List("domains", ""); d == nil || len(*d) != 2 {
		t.Errorf("space-separated list: %v", d)
	}
	if k := f.List("keys", "\n"); k == nil || len(*k) != 2 {
		t.Errorf("newline-separated list: %v", k)
	}
	f.Int("plan")
	f.String("name")
	f.Bool("on")
	var v *platform.ValidationError
	if !errors.As(f.Err(), &v) || len(v.Fields) != 3 {
		t.Fatalf("type errors: %v", f.Err())
	}
}
