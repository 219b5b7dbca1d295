package store

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestUsernamesIgnoreCase(t *testing.T) {
	s := openTest(t)
	alice, _ := mustUser(t, s, "Alice")
	for _, name := range []string{"Alice", "alice", "ALICE"} {
		got, err := s.UserByName(name)
		if err != nil || got.ID != alice.ID {
			t.Errorf("UserByName(%q) = %d, %v; want user %d", name, got.ID, err, alice.ID)
		}
	}
	if got, _ := s.UserByName("alice"); got.Username != "Alice" {
		t.Errorf("stored name %q, want it as given: Alice", got.Username)
	}
	tests := []struct{ name, taken string }{
		{"alice", "Alice"},
		{"ALICE", "Alice"},
		{"Alice", "Alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.CreateUser(User{Username: tt.name})
			var conflict *ConflictError
			if !errors.As(err, &conflict) || conflict.What != "username" || conflict.Value != tt.taken {
				t.Fatalf("CreateUser(%q): %v; want the username %q taken", tt.name, err, tt.taken)
			}
		})
	}
	if err := s.DeleteUser(alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByName("alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted user still found: %v", err)
	}
	if _, _, err := s.CreateUser(User{Username: "alice"}); err != nil {
		t.Fatalf("the name of a deleted user: %v", err)
	}
}

// A store from before names were folded may hold twins: the migration
// keeps both, each under its exact name.
func TestMigrationKeepsUsernamesDifferingInCase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rosti.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	older, _ := mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	// What an older rosti could store: a twin, indexed by exact name only.
	var twin User
	err = s.db.Update(func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		id, err := nextID(users)
		if err != nil {
			return err
		}
		twin = User{ID: id, Username: "Alice", IsActive: true, Created: time.Now()}
		if err := putJSON(users, itob(id), twin); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsersByName).Put([]byte("Alice"), itob(id)); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketUsersByFoldedName); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion()-1)))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		lookup string
		want   int64
	}{
		{"alice", older.ID},
		{"Alice", twin.ID},
		{"ALICE", older.ID}, // any other spelling: the older account
	}
	for _, tt := range tests {
		if got, err := s.UserByName(tt.lookup); err != nil || got.ID != tt.want {
			t.Errorf("UserByName(%q) = %d, %v; want %d", tt.lookup, got.ID, err, tt.want)
		}
	}
	if got, err := s.UserByName("BOB"); err != nil || got.Username != "bob" {
		t.Errorf("bob under another case: %+v, %v", got, err)
	}
	clashes, err := s.ClashingUsernames()
	if err != nil {
		t.Fatal(err)
	}
	if len(clashes) != 1 || !slices.Equal(clashes[0], []string{"alice", "Alice"}) {
		t.Fatalf("clashes %q, want [[alice Alice]]", clashes)
	}
	if _, _, err := s.CreateUser(User{Username: "aLice"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a third spelling: %v, want ErrConflict", err)
	}
	// Deleting the older twin passes the other spellings to the newer.
	if err := s.DeleteUser(older.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.UserByName("ALICE"); err != nil || got.ID != twin.ID {
		t.Fatalf("after deleting the older twin: %d, %v; want %d", got.ID, err, twin.ID)
	}
}
