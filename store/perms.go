package store

import (
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// GrantAppPerm lets userID manage one app without being a member of the
// app's company (Drycc's perms:create). Granting twice is a no-op.
func (s *Store) GrantAppPerm(appID, userID int64) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketApps).Get(itob(appID)) == nil {
			return fmt.Errorf("app %d: %w", appID, ErrNotFound)
		}
		if tx.Bucket(bucketUsers).Get(itob(userID)) == nil {
			return fmt.Errorf("user %d: %w", userID, ErrNotFound)
		}
		if err := tx.Bucket(bucketAppPerms).Put(pairKey(appID, userID), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketUserAppPerms).Put(pairKey(userID, appID), nil)
	})
}

// RevokeAppPerm takes a permission back; one that was not granted is
// ErrNotFound.
func (s *Store) RevokeAppPerm(appID, userID int64) error {
	return s.update(func(tx *bolt.Tx) error {
		perms := tx.Bucket(bucketAppPerms)
		if perms.Get(pairKey(appID, userID)) == nil {
			return fmt.Errorf("permission of user %d on app %d: %w", userID, appID, ErrNotFound)
		}
		if err := perms.Delete(pairKey(appID, userID)); err != nil {
			return err
		}
		return tx.Bucket(bucketUserAppPerms).Delete(pairKey(userID, appID))
	})
}

// HasAppPerm tells whether userID was granted appID.
func (s *Store) HasAppPerm(appID, userID int64) (bool, error) {
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketAppPerms).Get(pairKey(appID, userID)) != nil
		return nil
	})
	return ok, err
}

// AppPermUsers lists the ids of the users granted appID.
func (s *Store) AppPermUsers(appID int64) ([]int64, error) {
	var ids []int64
	err := s.view(func(tx *bolt.Tx) error {
		ids = idsWithPrefix(tx.Bucket(bucketAppPerms), itob(appID))
		return nil
	})
	return ids, err
}

// AppIDsVisibleTo lists, sorted, the ids of the apps of the given
// companies plus those granted to userID; all apps when every is set.
func (s *Store) AppIDsVisibleTo(userID int64, companyIDs []int64, every bool) ([]int64, error) {
	var ids []int64
	err := s.view(func(tx *bolt.Tx) error {
		if every {
			return tx.Bucket(bucketApps).ForEach(func(k, _ []byte) error {
				ids = append(ids, btoi(k))
				return nil
			})
		}
		for _, c := range companyIDs {
			ids = append(ids, idsWithPrefix(tx.Bucket(bucketCompanyApps), itob(c))...)
		}
		ids = append(ids, idsWithPrefix(tx.Bucket(bucketUserAppPerms), itob(userID))...)
		return nil
	})
	slices.Sort(ids)
	return slices.Compact(ids), err
}

// AppsByID returns the apps with the given ids, in that order.
func (s *Store) AppsByID(ids []int64) ([]App, error) {
	out := make([]App, len(ids))
	err := s.view(func(tx *bolt.Tx) error {
		apps := tx.Bucket(bucketApps)
		for i, id := range ids {
			if err := getJSON(apps, itob(id), &out[i], fmt.Sprintf("app %d", id)); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func deleteAppPerms(tx *bolt.Tx, appID int64) error {
	for _, userID := range idsWithPrefix(tx.Bucket(bucketAppPerms), itob(appID)) {
		if err := tx.Bucket(bucketUserAppPerms).Delete(pairKey(userID, appID)); err != nil {
			return err
		}
	}
	return deletePrefix(tx.Bucket(bucketAppPerms), itob(appID))
}

func deleteUserAppPerms(tx *bolt.Tx, userID int64) error {
	for _, appID := range idsWithPrefix(tx.Bucket(bucketUserAppPerms), itob(userID)) {
		if err := tx.Bucket(bucketAppPerms).Delete(pairKey(appID, userID)); err != nil {
			return err
		}
	}
	return deletePrefix(tx.Bucket(bucketUserAppPerms), itob(userID))
}
