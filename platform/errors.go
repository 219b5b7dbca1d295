package platform

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rosti-paas/rosti/store"
)

// Auth errors complete store's vocabulary for the faces.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
)

// ValidationError says, per field, what is wrong with an input. It is an
// ErrInvalid.
type ValidationError struct {
	Fields map[string][]string
}

func (e *ValidationError) Error() string {
	names := make([]string, 0, len(e.Fields))
	for f := range e.Fields {
		names = append(names, f)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, f := range names {
		parts = append(parts, f+": "+strings.Join(e.Fields[f], "; "))
	}
	return "validation error: " + strings.Join(parts, ", ")
}

// Unwrap makes errors.Is(err, store.ErrInvalid) hold.
func (e *ValidationError) Unwrap() error { return store.ErrInvalid }

// Add records a problem with field.
func (e *ValidationError) Add(field, format string, args ...any) {
	if e.Fields == nil {
		e.Fields = map[string][]string{}
	}
	e.Fields[field] = append(e.Fields[field], fmt.Sprintf(format, args...))
}

// Err returns e when it holds a problem, else nil.
func (e *ValidationError) Err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// FieldError is a ValidationError about one field.
func FieldError(field, format string, args ...any) error {
	var v ValidationError
	v.Add(field, format, args...)
	return &v
}
