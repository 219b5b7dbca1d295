package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Key is a user's SSH public key: it opens, over SSH, every app of the
// companies the user is a member of.
type Key struct {
	ID          int64     `json:"id"`
	UserID      int64     `json:"user_id"`
	Name        string    `json:"name"`
	PublicKey   string    `json:"public_key"`  // authorized_keys form, "type base64", no comment
	Fingerprint string    `json:"fingerprint"` // "SHA256:..." as ssh-keygen -l prints it
	Created     time.Time `json:"created"`
}

// fingerprintKey is the index key of a user's key: the fingerprint, a NUL
// (never part of a fingerprint, so one fingerprint is never a prefix of
// another's entries) and the user id.
func fingerprintKey(fingerprint string, userID int64) []byte {
	return append(append([]byte(fingerprint), 0), itob(userID)...)
}

// CreateKey stores a user's key; the fingerprint must be new for that user.
func (s *Store) CreateKey(k Key) (Key, error) {
	if k.Fingerprint == "" || bytes.IndexByte([]byte(k.Fingerprint), 0) >= 0 {
		return Key{}, fmt.Errorf("key fingerprint %q: %w", k.Fingerprint, ErrInvalid)
	}
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Get(itob(k.UserID)) == nil {
			return fmt.Errorf("user %d: %w", k.UserID, ErrNotFound)
		}
		keys, index := tx.Bucket(bucketKeys), tx.Bucket(bucketKeysByFingerprint)
		if index.Get(fingerprintKey(k.Fingerprint, k.UserID)) != nil {
			return &ConflictError{What: "key", Value: k.Fingerprint}
		}
		id, err := nextID(keys)
		if err != nil {
			return err
		}
		k.ID = id
		if err := index.Put(fingerprintKey(k.Fingerprint, k.UserID), itob(id)); err != nil {
			return err
		}
		return putJSON(keys, itob(id), k)
	})
	if err != nil {
		return Key{}, err
	}
	return k, nil
}

// Keys lists a user's keys, oldest first.
func (s *Store) Keys(userID int64) ([]Key, error) {
	var out []Key
	err := s.view(func(tx *bolt.Tx) error {
		all, err := listJSON[Key](tx.Bucket(bucketKeys))
		for _, k := range all {
			if k.UserID == userID {
				out = append(out, k)
			}
		}
		return err
	})
	return out, err
}

// KeysByFingerprint lists every user's key with this fingerprint (each user
// holds a key at most once, several users may hold the same key).
func (s *Store) KeysByFingerprint(fingerprint string) ([]Key, error) {
	var out []Key
	err := s.view(func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		prefix := append([]byte(fingerprint), 0)
		c := tx.Bucket(bucketKeysByFingerprint).Cursor()
		for k, id := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
			var key Key
			if err := getJSON(keys, id, &key, "key"); err != nil {
				return err
			}
			out = append(out, key)
		}
		return nil
	})
	return out, err
}

// DeleteKey removes one of a user's keys; another user's key is ErrNotFound.
func (s *Store) DeleteKey(userID, keyID int64) error {
	return s.update(func(tx *bolt.Tx) error {
		var k Key
		err := getJSON(tx.Bucket(bucketKeys), itob(keyID), &k, "key")
		if err == nil && k.UserID != userID {
			err = fmt.Errorf("key %d: %w", keyID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		return deleteKey(tx, k)
	})
}

func deleteKey(tx *bolt.Tx, k Key) error {
	if err := tx.Bucket(bucketKeysByFingerprint).Delete(fingerprintKey(k.Fingerprint, k.UserID)); err != nil {
		return err
	}
	return tx.Bucket(bucketKeys).Delete(itob(k.ID))
}

// deleteUserKeys removes every key of a user, as part of deleting it.
func deleteUserKeys(tx *bolt.Tx, userID int64) error {
	all, err := listJSON[Key](tx.Bucket(bucketKeys))
	if err != nil {
		return err
	}
	for _, k := range all {
		if k.UserID == userID {
			if err := deleteKey(tx, k); err != nil {
				return err
			}
		}
	}
	return nil
}
