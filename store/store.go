package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	bucketMeta        = []byte("meta")
	bucketUsers       = []byte("users")
	bucketUsersByName = []byte("users_by_name")
	bucketTokens      = []byte("tokens")
	bucketCompanies   = []byte("companies")
	bucketMemberships = []byte("memberships")
	bucketPlans       = []byte("plans")
	bucketRuntimes    = []byte("runtimes")
	bucketApps        = []byte("apps")
	bucketAppsByName  = []byte("apps_by_name")
	bucketCompanyApps = []byte("company_apps")
	bucketDomains     = []byte("domains")
	// Added by schema 2.
	bucketKeys              = []byte("keys")
	bucketKeysByFingerprint = []byte("keys_by_fingerprint")
	// Added by schema 3.
	bucketJobs        = []byte("jobs")
	bucketCompanyJobs = []byte("company_jobs")
	// Added by schema 4: releases, keyed by app id and version.
	bucketReleases = []byte("releases")
	// Added by schema 5.
	bucketStorages        = []byte("storages")
	bucketCompanyStorages = []byte("company_storages")
	// Added by schema 6: the web UI's sign-in sessions, keyed by the
	// sha256 of their secret.
	bucketSessions = []byte("sessions")
	// Two-factor sign-in (TOTP) of users, keyed by user id.
	bucketTwoFactor = []byte("two_factor")
	// Server-wide settings an administrator changes, by name.
	bucketSettings = []byte("settings")
	// Added by schema 7: per-app permissions, both ways, and uploaded
	// certificates with their index by company and name.
	bucketAppPerms     = []byte("app_perms")
	bucketUserAppPerms = []byte("user_app_perms")
	bucketCerts        = []byte("certs")
	bucketCertsByName  = []byte("certs_by_name")
)

var keySchema = []byte("schema")

// migrations bring a store from version i to i+1; the schema version is
// len(migrations). Append, never edit.
var migrations = []func(tx *bolt.Tx) error{
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketUsers, bucketUsersByName, bucketTokens, bucketCompanies,
			bucketMemberships, bucketPlans, bucketRuntimes, bucketApps, bucketAppsByName,
			bucketCompanyApps, bucketDomains} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 2: users' SSH keys.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketKeysByFingerprint} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 3: jobs.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketJobs, bucketCompanyJobs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 4: releases.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketReleases)
		return err
	},
	// 5: storages (databases).
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketStorages, bucketCompanyStorages} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 6: web sessions, two-factor sign-in, settings.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketTwoFactor, bucketSettings} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 7: per-app permissions and uploaded certificates.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketAppPerms, bucketUserAppPerms, bucketCerts, bucketCertsByName} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 8: user names compared without regard to case (usernames.go).
	migrateFoldedUsernames,
}

// SchemaVersion is the version a store is migrated to when opened.
func SchemaVersion() int { return len(migrations) }

// Store is rosti's database.
type Store struct {
	db       *bolt.DB
	revision atomic.Uint64
}

// Open opens (creating if needed) the store at path and migrates it.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: it is in use by another rosti process: %w", path, ErrConflict)
		}
		return nil, fmt.Errorf("open store %s: %v", path, err)
	}
	s := &Store{db: db}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate() error {
	return s.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		current := 0
		if v := meta.Get(keySchema); v != nil {
			if current, err = strconv.Atoi(string(v)); err != nil {
				return fmt.Errorf("schema version %q: %w", v, ErrInvalid)
			}
		}
		if current > len(migrations) {
			return fmt.Errorf("store schema %d is newer than this rosti (%d): %w", current, len(migrations), ErrInvalid)
		}
		for ; current < len(migrations); current++ {
			if err := migrations[current](tx); err != nil {
				return fmt.Errorf("migrate to schema %d: %v", current+1, err)
			}
		}
		return meta.Put(keySchema, []byte(strconv.Itoa(current)))
	})
}

// Close closes the database file.
func (s *Store) Close() error { return s.db.Close() }

// Revision grows by one with every committed change, so readers can cache
// what they derive from the store until it moves.
func (s *Store) Revision() uint64 { return s.revision.Load() }

// Backup writes a consistent copy of the whole database while it stays in
// use, and returns the number of bytes written.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %v", err)
	}
	return n, nil
}

func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	err := s.db.Update(fn)
	if err == nil {
		s.revision.Add(1)
	}
	return hideBolt(err)
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	return hideBolt(s.db.View(fn))
}

// hideBolt keeps our own errors and turns anything bbolt said into a plain
// error, so no caller can depend on bbolt's types; a full disk is
// ErrNoSpace (bbolt rolled the transaction back).
func hideBolt(err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNoSpace) {
		return err
	}
	if noSpace(err) {
		return ErrNoSpace
	}
	return fmt.Errorf("store: %v", err)
}

func itob(id int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(id))
	return b
}

func btoi(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

func pairKey(a, b int64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(a))
	binary.BigEndian.PutUint64(k[8:], uint64(b))
	return k
}

func getJSON(b *bolt.Bucket, key []byte, v any, what string) error {
	raw := b.Get(key)
	if raw == nil {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return getJSONValue(raw, v, what)
}

func getJSONValue(raw []byte, v any, what string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s: %v", what, err)
	}
	return nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

// nextID takes the next id of a bucket's sequence.
func nextID(b *bolt.Bucket) (int64, error) {
	seq, err := b.NextSequence()
	return int64(seq), err
}

// claimName puts name -> id into a unique index, failing with ErrConflict
// when another id holds it.
func claimName(index *bolt.Bucket, name string, id int64, what string) error {
	if cur := index.Get([]byte(name)); cur != nil && btoi(cur) != id {
		return &ConflictError{What: what, Value: name}
	}
	return index.Put([]byte(name), itob(id))
}

func listJSON[T any](b *bolt.Bucket) ([]T, error) {
	var out []T
	err := b.ForEach(func(_, v []byte) error {
		var item T
		if err := json.Unmarshal(v, &item); err != nil {
			return err
		}
		out = append(out, item)
		return nil
	})
	return out, err
}
