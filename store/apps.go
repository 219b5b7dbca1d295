package store

import (
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// firstAppUID is where app uids start: far above the host's own users and
// the ranges distributions hand out, so an app never shares a uid with
// anything else on the machine.
const firstAppUID = 200000

// CreateApp stores a new app, claiming its name and domains.
func (s *Store) CreateApp(a App) (App, error) {
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCompanies).Get(itob(a.CompanyID)) == nil {
			return fmt.Errorf("company %d: %w", a.CompanyID, ErrNotFound)
		}
		apps := tx.Bucket(bucketApps)
		id, err := nextID(apps)
		if err != nil {
			return err
		}
		a.ID = id
		a.UID = uint32(firstAppUID + id)
		if err := claimName(tx.Bucket(bucketAppsByName), a.Name, id, "app name"); err != nil {
			return err
		}
		if err := claimDomains(tx, id, nil, a.Domains); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCompanyApps).Put(pairKey(a.CompanyID, id), nil); err != nil {
			return err
		}
		return putJSON(apps, itob(id), a)
	})
	return a, err
}

func claimDomains(tx *bolt.Tx, appID int64, old, next []string) error {
	domains := tx.Bucket(bucketDomains)
	for _, d := range old {
		if err := domains.Delete([]byte(strings.ToLower(d))); err != nil {
			return err
		}
	}
	for _, d := range next {
		if err := claimName(domains, strings.ToLower(d), appID, "domain"); err != nil {
			return err
		}
	}
	return nil
}

// App returns an app by id.
func (s *Store) App(id int64) (App, error) {
	var a App
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketApps), itob(id), &a, fmt.Sprintf("app %d", id))
	})
	return a, err
}

// AppByName returns an app by its unique name.
func (s *Store) AppByName(name string) (App, error) {
	var a App
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketAppsByName).Get([]byte(name))
		if id == nil {
			return fmt.Errorf("app %q: %w", name, ErrNotFound)
		}
		return getJSON(tx.Bucket(bucketApps), id, &a, "app")
	})
	return a, err
}

// AppByDomain returns the app that holds a custom domain.
func (s *Store) AppByDomain(host string) (App, error) {
	var a App
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketDomains).Get([]byte(strings.ToLower(host)))
		if id == nil {
			return fmt.Errorf("domain %q: %w", host, ErrNotFound)
		}
		return getJSON(tx.Bucket(bucketApps), id, &a, "app")
	})
	return a, err
}

// CompanyApps lists a company's apps by id.
func (s *Store) CompanyApps(companyID int64) ([]App, error) {
	var out []App
	err := s.view(func(tx *bolt.Tx) error {
		apps := tx.Bucket(bucketApps)
		ids := idsWithPrefix(tx.Bucket(bucketCompanyApps), itob(companyID))
		out = make([]App, len(ids))
		for i, id := range ids {
			if err := getJSON(apps, itob(id), &out[i], "app"); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// Apps lists every app on the server.
func (s *Store) Apps() ([]App, error) {
	var out []App
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = listJSON[App](tx.Bucket(bucketApps))
		return err
	})
	return out, err
}

// UpdateApp applies change to the stored app inside one transaction; the id,
// company, name and uid cannot change, and the domains index follows.
func (s *Store) UpdateApp(id int64, change func(*App) error) (App, error) {
	var a App
	err := s.update(func(tx *bolt.Tx) error {
		apps := tx.Bucket(bucketApps)
		if err := getJSON(apps, itob(id), &a, fmt.Sprintf("app %d", id)); err != nil {
			return err
		}
		before := a
		before.Domains = append([]string(nil), a.Domains...)
		if err := change(&a); err != nil {
			return err
		}
		a.ID, a.CompanyID, a.Name, a.UID, a.Created = before.ID, before.CompanyID, before.Name, before.UID, before.Created
		if err := claimDomains(tx, id, before.Domains, a.Domains); err != nil {
			return err
		}
		return putJSON(apps, itob(id), a)
	})
	return a, err
}

// DeleteApp removes an app and frees its name and domains.
func (s *Store) DeleteApp(id int64) error {
	return s.update(func(tx *bolt.Tx) error {
		var a App
		if err := getJSON(tx.Bucket(bucketApps), itob(id), &a, fmt.Sprintf("app %d", id)); err != nil {
			return err
		}
		if err := claimDomains(tx, id, a.Domains, nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketAppsByName).Delete([]byte(a.Name)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCompanyApps).Delete(pairKey(a.CompanyID, id)); err != nil {
			return err
		}
		if err := deleteReleases(tx, id); err != nil {
			return err
		}
		if err := deleteAppPerms(tx, id); err != nil {
			return err
		}
		return tx.Bucket(bucketApps).Delete(itob(id))
	})
}

// MoveApp gives an app to another company and owner.
func (s *Store) MoveApp(id, companyID, ownerID int64) (App, error) {
	var a App
	err := s.update(func(tx *bolt.Tx) error {
		apps := tx.Bucket(bucketApps)
		if err := getJSON(apps, itob(id), &a, fmt.Sprintf("app %d", id)); err != nil {
			return err
		}
		if tx.Bucket(bucketCompanies).Get(itob(companyID)) == nil {
			return fmt.Errorf("company %d: %w", companyID, ErrNotFound)
		}
		index := tx.Bucket(bucketCompanyApps)
		if err := index.Delete(pairKey(a.CompanyID, id)); err != nil {
			return err
		}
		if err := index.Put(pairKey(companyID, id), nil); err != nil {
			return err
		}
		// Its containers move to the new company's isolation group.
		a.CompanyID, a.OwnerID = companyID, ownerID
		a.Generation++
		return putJSON(apps, itob(id), a)
	})
	return a, err
}
