package store

import (
	"errors"
	"strconv"
	"syscall"
)

// The error vocabulary shared by every layer above the store.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	// ErrNoSpace is a write that failed because the server's disk, or
	// rosti's share of it, is full: nothing the client sent is wrong, and
	// the same request succeeds once space is freed. Its text is what the
	// client reads.
	ErrNoSpace = errors.New("the server's disk is full; nothing was changed, try again once its operator has freed space")
)

// noSpace tells whether err is the file system saying it is full.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

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
