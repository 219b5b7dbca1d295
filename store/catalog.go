package store

import (
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// keyCatalogSeed records in the meta bucket the version of the last
// catalogue seed applied.
var keyCatalogSeed = []byte("catalog_seed")

// SeedCatalog brings the catalogue up to the seed of the given version. A
// new store gets all plans and runtimes. A store seeded by an older version
// gets the plans and runtimes whose names it lacks, the runtimes not marked
// default, and keeps every one it has as it is: an operator's edits are
// never overwritten. A version already applied changes nothing. (Stores
// from before versions were recorded count as seeded by version 1.)
func (s *Store) SeedCatalog(version int, plans []Plan, runtimes []Runtime) error {
	return s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		pb, rb := tx.Bucket(bucketPlans), tx.Bucket(bucketRuntimes)
		fresh := pb.Stats().KeyN == 0 && rb.Stats().KeyN == 0
		applied := 0
		if v := meta.Get(keyCatalogSeed); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return fmt.Errorf("catalogue seed version %q: %w", v, ErrInvalid)
			}
			applied = n
		} else if !fresh {
			applied = 1
		}
		if applied >= version {
			return nil
		}
		havePlans, err := namesIn[Plan](pb, func(p Plan) string { return p.Name })
		if err != nil {
			return err
		}
		for _, p := range plans {
			if !havePlans[p.Name] {
				if _, err := putWithID(pb, &p.ID, &p); err != nil {
					return err
				}
			}
		}
		haveRuntimes, err := namesIn[Runtime](rb, func(r Runtime) string { return r.Name })
		if err != nil {
			return err
		}
		for _, r := range runtimes {
			if !haveRuntimes[r.Name] {
				r.Default = r.Default && fresh
				if _, err := putWithID(rb, &r.ID, &r); err != nil {
					return err
				}
			}
		}
		return meta.Put(keyCatalogSeed, []byte(strconv.Itoa(version)))
	})
}

func namesIn[T any](b *bolt.Bucket, name func(T) string) (map[string]bool, error) {
	items, err := listJSON[T](b)
	if err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(items))
	for _, it := range items {
		names[name(it)] = true
	}
	return names, nil
}

// putWithID gives the object v points to (whose id field is *id) the next
// id of b and stores it.
func putWithID(b *bolt.Bucket, id *int64, v any) (int64, error) {
	next, err := nextID(b)
	if err != nil {
		return 0, err
	}
	*id = next
	return next, putJSON(b, itob(next), v)
}

// Plans lists the plans by id.
func (s *Store) Plans() ([]Plan, error) {
	var out []Plan
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = listJSON[Plan](tx.Bucket(bucketPlans))
		return err
	})
	return out, err
}

// Plan returns one plan.
func (s *Store) Plan(id int64) (Plan, error) {
	var p Plan
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketPlans), itob(id), &p, fmt.Sprintf("plan %d", id))
	})
	return p, err
}

// PutPlan creates (ID 0) or replaces a plan.
func (s *Store) PutPlan(p Plan) (Plan, error) {
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPlans)
		if p.ID == 0 {
			_, err := putWithID(b, &p.ID, &p)
			return err
		}
		if b.Get(itob(p.ID)) == nil {
			return fmt.Errorf("plan %d: %w", p.ID, ErrNotFound)
		}
		return putJSON(b, itob(p.ID), p)
	})
	return p, err
}

// Runtimes lists the runtimes by id.
func (s *Store) Runtimes() ([]Runtime, error) {
	var out []Runtime
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = listJSON[Runtime](tx.Bucket(bucketRuntimes))
		return err
	})
	return out, err
}

// Runtime returns one runtime.
func (s *Store) Runtime(id int64) (Runtime, error) {
	var r Runtime
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketRuntimes), itob(id), &r, fmt.Sprintf("runtime %d", id))
	})
	return r, err
}

// PutRuntime creates (ID 0) or replaces a runtime. Only one runtime is the
// default: marking one clears the mark on the others.
func (s *Store) PutRuntime(r Runtime) (Runtime, error) {
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuntimes)
		if r.ID != 0 && b.Get(itob(r.ID)) == nil {
			return fmt.Errorf("runtime %d: %w", r.ID, ErrNotFound)
		}
		if r.Default {
			others, err := listJSON[Runtime](b)
			if err != nil {
				return err
			}
			for _, o := range others {
				if o.Default && o.ID != r.ID {
					o.Default = false
					if err := putJSON(b, itob(o.ID), o); err != nil {
						return err
					}
				}
			}
		}
		if r.ID == 0 {
			_, err := putWithID(b, &r.ID, &r)
			return err
		}
		return putJSON(b, itob(r.ID), r)
	})
	return r, err
}
