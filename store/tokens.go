package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CreateToken stores a token whose Hash the caller computed.
func (s *Store) CreateToken(t Token) (Token, error) {
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Get(itob(t.UserID)) == nil {
			return fmt.Errorf("user %d: %w", t.UserID, ErrNotFound)
		}
		tokens := tx.Bucket(bucketTokens)
		if tokens.Get([]byte(t.Hash)) != nil {
			return fmt.Errorf("token: %w", ErrConflict)
		}
		id, err := nextID(tokens)
		if err != nil {
			return err
		}
		t.ID = id
		return putJSON(tokens, []byte(t.Hash), t)
	})
	return t, err
}

// TokenByHash finds a token by the sha256 of its secret.
func (s *Store) TokenByHash(hash string) (Token, error) {
	var t Token
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketTokens), []byte(hash), &t, "token")
	})
	return t, err
}

// TouchToken records that a token was used. It is skipped when the last use
// is recent, so that reads do not turn into writes.
func (s *Store) TouchToken(hash string, at time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		tokens := tx.Bucket(bucketTokens)
		var t Token
		if err := getJSON(tokens, []byte(hash), &t, "token"); err != nil {
			return err
		}
		t.LastUsed = &at
		return putJSON(tokens, []byte(hash), t)
	})
}

// Tokens lists a user's tokens.
func (s *Store) Tokens(userID int64) ([]Token, error) {
	var out []Token
	err := s.view(func(tx *bolt.Tx) error {
		all, err := listJSON[Token](tx.Bucket(bucketTokens))
		for _, t := range all {
			if t.UserID == userID {
				out = append(out, t)
			}
		}
		return err
	})
	return out, err
}

// DeleteToken revokes one of a user's tokens by id.
func (s *Store) DeleteToken(userID, tokenID int64) error {
	return s.update(func(tx *bolt.Tx) error {
		found := false
		err := deleteWhere(tx.Bucket(bucketTokens), func(_, v []byte) bool {
			var t Token
			hit := decodeInto(v, &t) && t.UserID == userID && t.ID == tokenID
			found = found || hit
			return hit
		})
		if err == nil && !found {
			err = fmt.Errorf("token %d: %w", tokenID, ErrNotFound)
		}
		return err
	})
}

// DeleteTokenByHash revokes the token with the given secret hash.
func (s *Store) DeleteTokenByHash(hash string) error {
	return s.update(func(tx *bolt.Tx) error {
		tokens := tx.Bucket(bucketTokens)
		if tokens.Get([]byte(hash)) == nil {
			return fmt.Errorf("token: %w", ErrNotFound)
		}
		return tokens.Delete([]byte(hash))
	})
}
