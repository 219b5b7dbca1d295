package store

import (
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// User names are stored as they were given and compared without regard to
// case: "Alice" and "alice" name one account. The folded index
// (bucketUsersByFoldedName) refuses a second name that differs only in
// case, and finds an account under any spelling. Stores made before it may
// hold such twins: both stay, each logs in under its exact name
// (bucketUsersByName is looked up first), other spellings find the older
// one, and ClashingUsernames lists them for the operator.

// Added by schema 8: user names folded to lower case.
var bucketUsersByFoldedName = []byte("users_by_folded_name")

// foldUsername is the key of a user name in the folded index.
func foldUsername(name string) []byte { return []byte(strings.ToLower(name)) }

// migrateFoldedUsernames indexes every user under its folded name; of
// twins, the older (smaller id) takes the folded key.
func migrateFoldedUsernames(tx *bolt.Tx) error {
	folded, err := tx.CreateBucketIfNotExists(bucketUsersByFoldedName)
	if err != nil {
		return err
	}
	users, err := listJSON[User](tx.Bucket(bucketUsers))
	if err != nil {
		return err
	}
	for _, u := range users { // in id order: bolt keys are big-endian ids
		if folded.Get(foldUsername(u.Username)) == nil {
			if err := folded.Put(foldUsername(u.Username), itob(u.ID)); err != nil {
				return err
			}
		}
	}
	return nil
}

// claimUsername indexes a new user's name, exact and folded; a name that
// differs from a taken one only in case is taken too.
func claimUsername(tx *bolt.Tx, name string, id int64) error {
	folded := tx.Bucket(bucketUsersByFoldedName)
	if cur := folded.Get(foldUsername(name)); cur != nil && btoi(cur) != id {
		var holder User
		if err := getJSON(tx.Bucket(bucketUsers), cur, &holder, "user"); err != nil {
			return err
		}
		return &ConflictError{What: "username", Value: holder.Username}
	}
	if err := claimName(tx.Bucket(bucketUsersByName), name, id, "username"); err != nil {
		return err
	}
	return folded.Put(foldUsername(name), itob(id))
}

// userIDByName finds a user under its exact name, or any spelling of it.
func userIDByName(tx *bolt.Tx, name string) []byte {
	if id := tx.Bucket(bucketUsersByName).Get([]byte(name)); id != nil {
		return id
	}
	return tx.Bucket(bucketUsersByFoldedName).Get(foldUsername(name))
}

// releaseUsername drops a deleted user's names from the indexes; its
// folded key passes to a remaining twin, if one exists.
func releaseUsername(tx *bolt.Tx, u User) error {
	if err := tx.Bucket(bucketUsersByName).Delete([]byte(u.Username)); err != nil {
		return err
	}
	folded := tx.Bucket(bucketUsersByFoldedName)
	key := foldUsername(u.Username)
	if cur := folded.Get(key); cur == nil || btoi(cur) != u.ID {
		return nil
	}
	if err := folded.Delete(key); err != nil {
		return err
	}
	users, err := listJSON[User](tx.Bucket(bucketUsers))
	if err != nil {
		return err
	}
	for _, other := range users {
		if other.ID != u.ID && string(foldUsername(other.Username)) == string(key) {
			return folded.Put(key, itob(other.ID))
		}
	}
	return nil
}

// ClashingUsernames lists the groups of user names that differ only in
// case, which stores made before names were compared that way may hold.
func (s *Store) ClashingUsernames() ([][]string, error) {
	var clashes [][]string
	err := s.view(func(tx *bolt.Tx) error {
		users, err := listJSON[User](tx.Bucket(bucketUsers))
		if err != nil {
			return err
		}
		byFold := map[string][]string{}
		for _, u := range users {
			key := string(foldUsername(u.Username))
			byFold[key] = append(byFold[key], u.Username)
		}
		for _, names := range byFold {
			if len(names) > 1 {
				clashes = append(clashes, names)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list user names: %w", err)
	}
	slices.SortFunc(clashes, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return clashes, nil
}
