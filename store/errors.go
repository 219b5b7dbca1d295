package store

import (
	"errors"
	"strconv"
)

// The error vocabulary shared by every layer above the store.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
)

// ConflictError says which unique name is already taken. It is an ErrConflict.
type ConflictError struct {
	What  string // "username", "app name", "domain"
	Value string
}

func (e *ConflictError) Error() string { return e.What + " " + strconv.Quote(e.Value) + " is taken" }

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Message is err's text for the user who caused it: without the names of
// the vocabulary's kinds (": invalid", ": conflict") that wrapping with %w
// leaves at its end, and that say nothing to a person.
func Message(err error) string {
	msg := err.Error()
	for _, kind := range []error{ErrInvalid, ErrConflict} {
		for errors.Is(err, kind) && len(msg) > len(kind.Error())+2 && msg[len(msg)-len(kind.Error())-2:] == ": "+kind.Error() {
			msg = msg[:len(msg)-len(kind.Error())-2]
		}
	}
	return msg
}
