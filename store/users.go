package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CreateUser stores a new user with its first company, named after it, of
// which it is the owner. The first user ever created is made a superuser.
func (s *Store) CreateUser(u User) (User, Company, error) {
	var c Company
	err := s.update(func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		id, err := nextID(users)
		if err != nil {
			return err
		}
		u.ID = id
		if id == 1 {
			u.IsSuperuser = true
		}
		if err := claimUsername(tx, u.Username, id); err != nil {
			return err
		}
		if err := putJSON(users, itob(id), u); err != nil {
			return err
		}
		c, err = createCompany(tx, Company{Name: u.Username, Created: u.Created}, id)
		return err
	})
	if err != nil {
		return User{}, Company{}, err
	}
	return u, c, nil
}

// User returns the user with the given id.
func (s *Store) User(id int64) (User, error) {
	var u User
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketUsers), itob(id), &u, "user")
	})
	return u, err
}

// UserByName returns the user with the given username, in any case.
func (s *Store) UserByName(name string) (User, error) {
	var u User
	err := s.view(func(tx *bolt.Tx) error {
		id := userIDByName(tx, name)
		if id == nil {
			return fmt.Errorf("user %q: %w", name, ErrNotFound)
		}
		return getJSON(tx.Bucket(bucketUsers), id, &u, "user")
	})
	return u, err
}

// Users lists every user.
func (s *Store) Users() ([]User, error) {
	var out []User
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = listJSON[User](tx.Bucket(bucketUsers))
		return err
	})
	return out, err
}

// CountUsers says how many accounts exist.
func (s *Store) CountUsers() (int, error) {
	var n int
	err := s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketUsers).Stats().KeyN
		return nil
	})
	return n, err
}

// UpdateUser applies change to the stored user; the username cannot change.
func (s *Store) UpdateUser(id int64, change func(*User) error) (User, error) {
	var u User
	err := s.update(func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		if err := getJSON(users, itob(id), &u, "user"); err != nil {
			return err
		}
		name := u.Username
		if err := change(&u); err != nil {
			return err
		}
		u.ID, u.Username = id, name
		return putJSON(users, itob(id), u)
	})
	return u, err
}

// TouchLogin records a successful log in.
func (s *Store) TouchLogin(id int64, at time.Time) error {
	_, err := s.UpdateUser(id, func(u *User) error { u.LastLogin = &at; return nil })
	return err
}

// DeleteUser removes a user, its tokens, keys and memberships. Companies it owned
// alone and their apps stay for the operator to hand over or delete.
func (s *Store) DeleteUser(id int64) error {
	return s.update(func(tx *bolt.Tx) error {
		var u User
		if err := getJSON(tx.Bucket(bucketUsers), itob(id), &u, "user"); err != nil {
			return err
		}
		if err := deleteWhere(tx.Bucket(bucketTokens), func(_, v []byte) bool {
			var t Token
			return decodeInto(v, &t) && t.UserID == id
		}); err != nil {
			return err
		}
		if err := deleteUserKeys(tx, id); err != nil {
			return err
		}
		if err := deletePrefix(tx.Bucket(bucketMemberships), itob(id)); err != nil {
			return err
		}
		if err := deleteUserAppPerms(tx, id); err != nil {
			return err
		}
		if err := releaseUsername(tx, u); err != nil {
			return err
		}
		return tx.Bucket(bucketUsers).Delete(itob(id))
	})
}
