package store

import (
	"errors"
	"testing"
)

func TestReleasesAreNumberedPerApp(t *testing.T) {
	s := openTest(t)
	_, c := mustUser(t, s, "alice")
	one, err := s.CreateApp(App{CompanyID: c.ID, Name: "one"})
	if err != nil {
		t.Fatal(err)
	}
	two, err := s.CreateApp(App{CompanyID: c.ID, Name: "two"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		app  int64
		want int64
	}{
		{"first of one", one.ID, 1},
		{"second of one", one.ID, 2},
		{"first of two, after one's", two.ID, 1},
		{"third of one, after two's", one.ID, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.CreateRelease(Release{AppID: tc.app, Status: ReleasePending})
			if err != nil {
				t.Fatal(err)
			}
			if r.Version != tc.want {
				t.Fatalf("version %d, want %d", r.Version, tc.want)
			}
		})
	}
	list, err := s.Releases(one.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Version != 3 || list[2].Version != 1 {
		t.Fatalf("releases of one, newest first: %+v", list)
	}
	if _, err := s.UpdateRelease(one.ID, 2, func(r *Release) { r.Status = ReleaseFailed; r.Version = 9 }); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Release(one.ID, 2); err != nil || r.Status != ReleaseFailed {
		t.Fatalf("updated release: %+v, %v", r, err)
	}
	if _, err := s.CreateRelease(Release{AppID: 999}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("release of a missing app: %v", err)
	}
	if err := s.DeleteApp(one.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.Releases(one.ID); len(list) != 0 {
		t.Fatalf("releases left after the app was deleted: %+v", list)
	}
	if list, _ := s.Releases(two.ID); len(list) != 1 {
		t.Fatalf("another app's releases went with it: %+v", list)
	}
}
