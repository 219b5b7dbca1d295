package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

func createCompany(tx *bolt.Tx, c Company, ownerID int64) (Company, error) {
	companies := tx.Bucket(bucketCompanies)
	id, err := nextID(companies)
	if err != nil {
		return Company{}, err
	}
	c.ID = id
	if err := putJSON(companies, itob(id), c); err != nil {
		return Company{}, err
	}
	return c, tx.Bucket(bucketMemberships).Put(pairKey(ownerID, id), []byte(RoleOwner))
}

// CreateCompany stores a new company owned by ownerID.
func (s *Store) CreateCompany(c Company, ownerID int64) (Company, error) {
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Get(itob(ownerID)) == nil {
			return fmt.Errorf("user %d: %w", ownerID, ErrNotFound)
		}
		var err error
		c, err = createCompany(tx, c, ownerID)
		return err
	})
	return c, err
}

// Company returns a company by id.
func (s *Store) Company(id int64) (Company, error) {
	var c Company
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketCompanies), itob(id), &c, "company")
	})
	return c, err
}

// Role says what userID is in company, ErrNotFound when not a member: to
// an outsider a company it does not belong to does not exist.
func (s *Store) Role(userID, companyID int64) (Role, error) {
	var r Role
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMemberships).Get(pairKey(userID, companyID))
		if v == nil {
			return fmt.Errorf("company %d: %w", companyID, ErrNotFound)
		}
		r = Role(v)
		return nil
	})
	return r, err
}

// CompaniesOf lists the companies a user is a member of, by id.
func (s *Store) CompaniesOf(userID int64) ([]Company, error) {
	var out []Company
	err := s.view(func(tx *bolt.Tx) error {
		companies := tx.Bucket(bucketCompanies)
		for _, id := range idsWithPrefix(tx.Bucket(bucketMemberships), itob(userID)) {
			var c Company
			if err := getJSON(companies, itob(id), &c, "company"); err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// SetMember adds userID to company with role, or changes its role.
func (s *Store) SetMember(companyID, userID int64, role Role) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCompanies).Get(itob(companyID)) == nil {
			return fmt.Errorf("company %d: %w", companyID, ErrNotFound)
		}
		if tx.Bucket(bucketUsers).Get(itob(userID)) == nil {
			return fmt.Errorf("user %d: %w", userID, ErrNotFound)
		}
		return tx.Bucket(bucketMemberships).Put(pairKey(userID, companyID), []byte(role))
	})
}

// Members lists the memberships of a company.
func (s *Store) Members(companyID int64) ([]Membership, error) {
	var out []Membership
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMemberships).ForEach(func(k, v []byte) error {
			if btoi(k[8:]) == companyID {
				out = append(out, Membership{UserID: btoi(k[:8]), CompanyID: companyID, Role: Role(v)})
			}
			return nil
		})
	})
	return out, err
}
