package store

import (
	"errors"
	"fmt"
	"testing"
)

func TestMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"invalid", fmt.Errorf("pull x: trying again in 30s: %w", ErrInvalid), "pull x: trying again in 30s"},
		{"invalid twice", fmt.Errorf("release: %w", fmt.Errorf("bad: %w", ErrInvalid)), "release: bad"},
		{"conflict", fmt.Errorf("nothing changed: %w", ErrConflict), "nothing changed"},
		{"not found reads well as it is", fmt.Errorf("app 5: %w", ErrNotFound), "app 5: not found"},
		{"the kind alone", ErrInvalid, "invalid"},
		{"a word that only looks like it", errors.New("the value is invalid"), "the value is invalid"},
		{"a conflict that says what", &ConflictError{What: "domain", Value: "a.b"}, `domain "a.b" is taken`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Message(tc.err); got != tc.want {
				t.Fatalf("Message = %q, want %q", got, tc.want)
			}
		})
	}
}
