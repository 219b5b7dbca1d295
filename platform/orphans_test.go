package platform

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/rosti-paas/rosti/store"
)

func TestRemoveOrphanedFiles(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "rosti.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, company, err := st.CreateUser(store.User{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := st.CreateApp(store.App{CompanyID: company.ID, Name: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	p := &Platform{cfg: Config{DataDir: dir}, store: st, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if app.ID != 1 {
		t.Fatalf("app id %d, want 1", app.ID)
	}
	tests := []struct {
		name string
		path string
		kept bool
	}{
		{"volume of an app", filepath.Join("volumes", "1"), true},
		{"volume of a deleted app", filepath.Join("volumes", "7"), false},
		{"repository of an app", filepath.Join("repos", "1.git"), true},
		{"repository of a deleted app", filepath.Join("repos", "7.git"), false},
		{"not an app's", filepath.Join("volumes", "lost+found"), true},
	}
	for _, tt := range tests {
		if err := os.MkdirAll(filepath.Join(dir, tt.path, "app"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.RemoveOrphanedFiles(); err != nil {
		t.Fatal(err)
	}
	var wrong []string
	for _, tt := range tests {
		_, err := os.Stat(filepath.Join(dir, tt.path))
		if exists := err == nil; exists != tt.kept {
			wrong = append(wrong, tt.name)
		}
	}
	if len(wrong) != 0 {
		t.Errorf("wrongly kept or removed: %v", wrong)
	}
}
