package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Cert is an uploaded TLS certificate of a company, served by the proxy
// for the domains attached to it instead of an ACME one. The key is a
// secret: never logged, never shown.
type Cert struct {
	ID          int64     `json:"id"`
	CompanyID   int64     `json:"company_id"`
	OwnerID     int64     `json:"owner_id"`
	Name        string    `json:"name"`
	CertPEM     string    `json:"cert_pem"`
	KeyPEM      string    `json:"key_pem"`
	CommonName  string    `json:"common_name"`
	SAN         []string  `json:"san"`
	Fingerprint string    `json:"fingerprint"`
	Issuer      string    `json:"issuer"`
	Subject     string    `json:"subject"`
	Starts      time.Time `json:"starts"`
	Expires     time.Time `json:"expires"`
	Domains     []string  `json:"domains"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

func certNameKey(companyID int64, name string) []byte {
	return append(itob(companyID), name...)
}

// CreateCert stores a certificate; its name is unique within its company.
func (s *Store) CreateCert(c Cert) (Cert, error) {
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCompanies).Get(itob(c.CompanyID)) == nil {
			return fmt.Errorf("company %d: %w", c.CompanyID, ErrNotFound)
		}
		certs := tx.Bucket(bucketCerts)
		id, err := nextID(certs)
		if err != nil {
			return err
		}
		c.ID = id
		byName := tx.Bucket(bucketCertsByName)
		if byName.Get(certNameKey(c.CompanyID, c.Name)) != nil {
			return &ConflictError{What: "certificate name", Value: c.Name}
		}
		if err := byName.Put(certNameKey(c.CompanyID, c.Name), itob(id)); err != nil {
			return err
		}
		return putJSON(certs, itob(id), c)
	})
	return c, err
}

// CertByName returns a company's certificate by name.
func (s *Store) CertByName(companyID int64, name string) (Cert, error) {
	var c Cert
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketCertsByName).Get(certNameKey(companyID, name))
		if id == nil {
			return fmt.Errorf("certificate %q: %w", name, ErrNotFound)
		}
		return getJSON(tx.Bucket(bucketCerts), id, &c, "certificate")
	})
	return c, err
}

// Certs lists every certificate; companyID 0 means of every company.
func (s *Store) Certs(companyID int64) ([]Cert, error) {
	var out []Cert
	err := s.view(func(tx *bolt.Tx) error {
		all, err := listJSON[Cert](tx.Bucket(bucketCerts))
		for _, c := range all {
			if companyID == 0 || c.CompanyID == companyID {
				out = append(out, c)
			}
		}
		return err
	})
	return out, err
}

// UpdateCert applies change to a stored certificate; its id, company and
// name cannot change.
func (s *Store) UpdateCert(id int64, change func(*Cert) error) (Cert, error) {
	var c Cert
	err := s.update(func(tx *bolt.Tx) error {
		certs := tx.Bucket(bucketCerts)
		if err := getJSON(certs, itob(id), &c, "certificate"); err != nil {
			return err
		}
		before := c
		if err := change(&c); err != nil {
			return err
		}
		c.ID, c.CompanyID, c.Name = before.ID, before.CompanyID, before.Name
		return putJSON(certs, itob(id), c)
	})
	return c, err
}

// DeleteCert removes a certificate.
func (s *Store) DeleteCert(id int64) error {
	return s.update(func(tx *bolt.Tx) error {
		var c Cert
		if err := getJSON(tx.Bucket(bucketCerts), itob(id), &c, "certificate"); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCertsByName).Delete(certNameKey(c.CompanyID, c.Name)); err != nil {
			return err
		}
		return tx.Bucket(bucketCerts).Delete(itob(id))
	})
}
