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
