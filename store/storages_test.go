package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestStorages(t *testing.T) {
	s := openTest(t)
	_, alice, err := s.CreateUser(User{Username: "alice", IsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	_, bob, err := s.CreateUser(User{Username: "bob", IsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	name := func(id int64) string { return fmt.Sprintf("db%d", id) }
	now := time.Now().UTC()
	a, err := s.CreateStorage(Storage{CompanyID: alice.ID, Type: StoragePostgres, Host: "10.0.0.1", Port: 5432, Created: now}, name)
	if err != nil || a.Database != fmt.Sprintf("db%d", a.ID) || a.Username != a.Database {
		t.Fatalf("create: %+v %v", a, err)
	}
	b, err := s.CreateStorage(Storage{CompanyID: bob.ID, Type: StorageMariaDB, Created: now}, name)
	if err != nil || b.ID == a.ID {
		t.Fatalf("create bob's: %+v %v", b, err)
	}
	if _, err := s.CreateStorage(Storage{CompanyID: 999, Type: StorageMariaDB}, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("create for a missing company: %v", err)
	}

	got, err := s.UpdateStorage(a.ID, func(st *Storage) error { st.Note, st.CompanyID, st.Database = "main", bob.ID, "x"; return nil })
	if err != nil || got.Note != "main" || got.CompanyID != alice.ID || got.Database != a.Database {
		t.Fatalf("update (only the note may change): %+v %v", got, err)
	}
	list, err := s.CompanyStorages(alice.ID)
	if err != nil || len(list) != 1 || list[0].ID != a.ID || list[0].Note != "main" {
		t.Fatalf("alice's storages: %+v %v", list, err)
	}
	if err := s.DeleteStorage(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Storage(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after delete: %v", err)
	}
	if list, err := s.CompanyStorages(alice.ID); err != nil || len(list) != 0 {
		t.Fatalf("alice's storages after delete: %+v %v", list, err)
	}
	if list, err := s.CompanyStorages(bob.ID); err != nil || len(list) != 1 {
		t.Fatalf("bob's storages: %+v %v", list, err)
	}
	if err := s.DeleteStorage(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}
