package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Session is a browser's sign-in to the web UI. Like a token, only the
// sha256 of its secret is stored; the secret lives in the browser's cookie.
type Session struct {
	Hash     string    `json:"hash"`
	UserID   int64     `json:"user_id"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Expires  time.Time `json:"expires"`
	// AwaitingCode marks a sign-in whose password was right and whose
	// second factor is still to come: it signs nobody in yet.
	AwaitingCode bool `json:"awaiting_code,omitempty"`
	WrongCodes   int  `json:"wrong_codes,omitempty"`
}

// CreateSession stores a session whose Hash the caller computed.
func (s *Store) CreateSession(se Session) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Get(itob(se.UserID)) == nil {
			return fmt.Errorf("user %d: %w", se.UserID, ErrNotFound)
		}
		b := tx.Bucket(bucketSessions)
		if b.Get([]byte(se.Hash)) != nil {
			return fmt.Errorf("session: %w", ErrConflict)
		}
		return putJSON(b, []byte(se.Hash), se)
	})
}

// SessionByHash finds a session by the sha256 of its secret.
func (s *Store) SessionByHash(hash string) (Session, error) {
	var se Session
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketSessions), []byte(hash), &se, "session")
	})
	return se, err
}

// UpdateSession changes a session in one transaction.
func (s *Store) UpdateSession(hash string, change func(*Session)) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		var se Session
		if err := getJSON(b, []byte(hash), &se, "session"); err != nil {
			return err
		}
		change(&se)
		return putJSON(b, []byte(hash), se)
	})
}

// DeleteSession ends one session; a missing one is no error, since
// signing out twice ends in the same place.
func (s *Store) DeleteSession(hash string) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).Delete([]byte(hash))
	})
}

// DeleteSessions ends a user's sessions except the one hashed keep ("" for
// all), and every expired session of anybody on the way.
func (s *Store) DeleteSessions(userID int64, keep string, now time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		return deleteWhere(tx.Bucket(bucketSessions), func(k, v []byte) bool {
			var se Session
			if !decodeInto(v, &se) {
				return true
			}
			return se.Expires.Before(now) || (se.UserID == userID && string(k) != keep)
		})
	})
}
