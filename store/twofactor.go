package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TwoFactor is a user's TOTP second factor. The secret must stay readable
// to check codes; the recovery codes are kept as hashes, each usable once.
type TwoFactor struct {
	UserID  int64  `json:"user_id"`
	Secret  string `json:"secret"` // base32, as authenticator apps take it
	Enabled bool   `json:"enabled"`
	// LastStep is the last 30-second step a code was accepted for: a code
	// is never accepted twice.
	LastStep       int64     `json:"last_step"`
	RecoveryHashes []string  `json:"recovery_hashes,omitempty"`
	Created        time.Time `json:"created"`
}

// TwoFactor returns a user's second factor; ErrNotFound when none is set up.
func (s *Store) TwoFactor(userID int64) (TwoFactor, error) {
	var tf TwoFactor
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketTwoFactor), itob(userID), &tf, fmt.Sprintf("two-factor of user %d", userID))
	})
	return tf, err
}

// PutTwoFactor stores a user's second factor.
func (s *Store) PutTwoFactor(tf TwoFactor) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Get(itob(tf.UserID)) == nil {
			return fmt.Errorf("user %d: %w", tf.UserID, ErrNotFound)
		}
		return putJSON(tx.Bucket(bucketTwoFactor), itob(tf.UserID), tf)
	})
}

// UpdateTwoFactor changes a user's second factor in one transaction, so
// that two sign-ins racing with one code or one recovery code cannot both
// use it.
func (s *Store) UpdateTwoFactor(userID int64, change func(*TwoFactor) error) (TwoFactor, error) {
	var tf TwoFactor
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTwoFactor)
		if err := getJSON(b, itob(userID), &tf, fmt.Sprintf("two-factor of user %d", userID)); err != nil {
			return err
		}
		if err := change(&tf); err != nil {
			return err
		}
		return putJSON(b, itob(userID), tf)
	})
	return tf, err
}

// DeleteTwoFactor turns a user's second factor off.
func (s *Store) DeleteTwoFactor(userID int64) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTwoFactor).Delete(itob(userID))
	})
}
