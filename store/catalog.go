package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SeedCatalog stores plans and runtimes when none exist yet, so that an
// operator's later edits are never overwritten.
func (s *Store) SeedCatalog(plans []Plan, runtimes []Runtime) error {
	return s.update(func(tx *bolt.Tx) error {
		if pb := tx.Bucket(bucketPlans); pb.Stats().KeyN == 0 {
			for _, p := range plans {
				if _, err := putWithID(pb, &p.ID, &p); err != nil {
					return err
				}
			}
		}
		if rb := tx.Bucket(bucketRuntimes); rb.Stats().KeyN == 0 {
			for _, r := range runtimes {
				if _, err := putWithID(rb, &r.ID, &r); err != nil {
					return err
				}
			}
		}
		return nil
	})
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
