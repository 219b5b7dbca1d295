package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// CreateRelease stores r as the app's next version, numbered here so that
// two releases of one app never share a version, and returns it.
func (s *Store) CreateRelease(r Release) (Release, error) {
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketApps).Get(itob(r.AppID)) == nil {
			return fmt.Errorf("app %d: %w", r.AppID, ErrNotFound)
		}
		r.Version = 1
		c := tx.Bucket(bucketReleases).Cursor()
		prefix := itob(r.AppID)
		for k, _ := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, _ = c.Next() {
			r.Version = btoi(k[8:]) + 1
		}
		return putJSON(tx.Bucket(bucketReleases), pairKey(r.AppID, r.Version), r)
	})
	return r, err
}

// Release returns one version of an app.
func (s *Store) Release(appID, version int64) (Release, error) {
	var r Release
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketReleases), pairKey(appID, version), &r, fmt.Sprintf("release v%d", version))
	})
	return r, err
}

// Releases lists an app's releases, newest first.
func (s *Store) Releases(appID int64) ([]Release, error) {
	var out []Release
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketReleases).Cursor()
		prefix := itob(appID)
		for k, v := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, v = c.Next() {
			var r Release
			if err := getJSONValue(v, &r, "release"); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// UpdateRelease applies change to a stored release; its app and version
// cannot change.
func (s *Store) UpdateRelease(appID, version int64, change func(*Release)) (Release, error) {
	var r Release
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReleases)
		key := pairKey(appID, version)
		if err := getJSON(b, key, &r, fmt.Sprintf("release v%d", version)); err != nil {
			return err
		}
		change(&r)
		r.AppID, r.Version = appID, version
		return putJSON(b, key, r)
	})
	return r, err
}

// deleteReleases removes every release of an app, in the app's deletion.
func deleteReleases(tx *bolt.Tx, appID int64) error {
	b := tx.Bucket(bucketReleases)
	c := b.Cursor()
	prefix := itob(appID)
	for k, _ := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, _ = c.Seek(prefix) {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
