package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ErrLastMember is removing the only member of a company, which would
// leave its apps to nobody. It is an ErrConflict.
var ErrLastMember = fmt.Errorf("a company keeps at least one member: %w", ErrConflict)

// RemoveMember takes userID out of company, unless it is the last member.
func (s *Store) RemoveMember(companyID, userID int64) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMemberships)
		if b.Get(pairKey(userID, companyID)) == nil {
			return fmt.Errorf("member %d of company %d: %w", userID, companyID, ErrNotFound)
		}
		members := 0
		if err := b.ForEach(func(k, _ []byte) error {
			if btoi(k[8:]) == companyID {
				members++
			}
			return nil
		}); err != nil {
			return err
		}
		if members <= 1 {
			return ErrLastMember
		}
		return b.Delete(pairKey(userID, companyID))
	})
}
