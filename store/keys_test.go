package store

import (
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestKeys(t *testing.T) {
	s := openTest(t)
	alice, _ := mustUser(t, s, "alice")
	bob, _ := mustUser(t, s, "bob")
	mk := func(u User, fp string) (Key, error) {
		return s.CreateKey(Key{UserID: u.ID, Name: fp, PublicKey: "ssh-ed25519 AAAA" + fp, Fingerprint: "SHA256:" + fp})
	}
	a1, err := mk(alice, "one")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mk(alice, "two"); err != nil {
		t.Fatal(err)
	}
	// The same key may belong to two users, but only once to each.
	b1, err := mk(bob, "one")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		userID      int64
		fingerprint string
		want        error
	}{
		{"same key twice", alice.ID, "SHA256:one", ErrConflict},
		{"unknown user", 99, "SHA256:x", ErrNotFound},
		{"no fingerprint", alice.ID, "", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.CreateKey(Key{UserID: tc.userID, Fingerprint: tc.fingerprint}); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	if ks, err := s.Keys(alice.ID); err != nil || len(ks) != 2 || ks[0].ID != a1.ID {
		t.Fatalf("alice's keys: %+v %v", ks, err)
	}
	holders, err := s.KeysByFingerprint("SHA256:one")
	if err != nil || len(holders) != 2 {
		t.Fatalf("holders of one: %+v %v", holders, err)
	}
	// A fingerprint that is a prefix of another matches nothing.
	if ks, err := s.KeysByFingerprint("SHA256:on"); err != nil || len(ks) != 0 {
		t.Fatalf("prefix lookup: %+v %v", ks, err)
	}

	if err := s.DeleteKey(alice.ID, b1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("alice deleting bob's key: %v, want ErrNotFound", err)
	}
	if err := s.DeleteKey(bob.ID, b1.ID); err != nil {
		t.Fatal(err)
	}
	if holders, _ := s.KeysByFingerprint("SHA256:one"); len(holders) != 1 || holders[0].UserID != alice.ID {
		t.Fatalf("after bob's delete: %+v", holders)
	}
	if err := s.DeleteKey(bob.ID, b1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}

	if err := s.DeleteUser(alice.ID); err != nil {
		t.Fatal(err)
	}
	if ks, _ := s.KeysByFingerprint("SHA256:two"); len(ks) != 0 {
		t.Fatalf("keys of a deleted user remain: %+v", ks)
	}
}

// TestMigrationAddsKeys opens a store written at schema 1 (no key buckets)
// and finds it migrated.
func TestMigrationAddsKeys(t *testing.T) {
	s := openTest(t)
	alice, _ := mustUser(t, s, "alice")
	if err := s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketKeysByFingerprint} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("1"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.migrate(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateKey(Key{UserID: alice.ID, Fingerprint: "SHA256:x"}); err != nil {
		t.Fatalf("after migration: %v", err)
	}
}
