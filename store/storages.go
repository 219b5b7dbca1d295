package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Storage types.
const (
	StoragePostgres = "pgsql"
	StorageMariaDB  = "mariadb"
)

// Storage is a company's database in a database server. Its password is
// never here: it lives only in the database server, which checks it.
type Storage struct {
	ID        int64     `json:"id"`
	CompanyID int64     `json:"company_id"`
	Type      string    `json:"type"`     // StoragePostgres or StorageMariaDB
	Database  string    `json:"database"` // generated from the id
	Username  string    `json:"username"` // the database's own role or user
	Host      string    `json:"host"`     // what the company's apps connect to
	Port      int       `json:"port"`
	Note      string    `json:"note"`
	Created   time.Time `json:"created"`
}

// CreateStorage stores a new storage of s.CompanyID; name derives its
// database and user name from the id it gets, so that names are never
// reused (ids are not).
func (s *Store) CreateStorage(st Storage, name func(id int64) string) (Storage, error) {
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCompanies).Get(itob(st.CompanyID)) == nil {
			return fmt.Errorf("company %d: %w", st.CompanyID, ErrNotFound)
		}
		b := tx.Bucket(bucketStorages)
		id, err := nextID(b)
		if err != nil {
			return err
		}
		st.ID = id
		st.Database = name(id)
		st.Username = st.Database
		if err := tx.Bucket(bucketCompanyStorages).Put(pairKey(st.CompanyID, id), nil); err != nil {
			return err
		}
		return putJSON(b, itob(id), st)
	})
	if err != nil {
		return Storage{}, err
	}
	return st, nil
}

// Storage returns one storage by id.
func (s *Store) Storage(id int64) (Storage, error) {
	var st Storage
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketStorages), itob(id), &st, fmt.Sprintf("storage %d", id))
	})
	return st, err
}

// CompanyStorages lists a company's storages, oldest first.
func (s *Store) CompanyStorages(companyID int64) ([]Storage, error) {
	out := []Storage{}
	err := s.view(func(tx *bolt.Tx) error {
		storages := tx.Bucket(bucketStorages)
		prefix := itob(companyID)
		c := tx.Bucket(bucketCompanyStorages).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			var st Storage
			if err := getJSON(storages, k[8:], &st, "storage"); err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// UpdateStorage applies fn to a storage; its id, company, type and names
// stay as they are.
func (s *Store) UpdateStorage(id int64, fn func(*Storage) error) (Storage, error) {
	var st Storage
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStorages)
		if err := getJSON(b, itob(id), &st, fmt.Sprintf("storage %d", id)); err != nil {
			return err
		}
		fixed := st
		if err := fn(&st); err != nil {
			return err
		}
		st.ID, st.CompanyID, st.Type, st.Database, st.Username = fixed.ID, fixed.CompanyID, fixed.Type, fixed.Database, fixed.Username
		return putJSON(b, itob(id), st)
	})
	if err != nil {
		return Storage{}, err
	}
	return st, nil
}

// DeleteStorage removes a storage.
func (s *Store) DeleteStorage(id int64) error {
	return s.update(func(tx *bolt.Tx) error {
		var st Storage
		if err := getJSON(tx.Bucket(bucketStorages), itob(id), &st, fmt.Sprintf("storage %d", id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCompanyStorages).Delete(pairKey(st.CompanyID, id)); err != nil {
			return err
		}
		return tx.Bucket(bucketStorages).Delete(itob(id))
	})
}
