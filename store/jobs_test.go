package store

import (
	"errors"
	"testing"
	"time"
)

func TestJobs(t *testing.T) {
	s := openTest(t)
	now := time.Now().UTC()
	a, err := s.CreateJob(Job{CompanyID: 1, Kind: "pull", Target: "img:1", Status: JobRunning, Created: now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateJob(Job{CompanyID: 1, Kind: "pull", Target: "img:2", Status: JobPending, Created: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateJob(Job{CompanyID: 2, Kind: "pull", Target: "img:3", Status: JobDone, Created: now}); err != nil {
		t.Fatal(err)
	}

	got, err := s.UpdateJob(a.ID, func(j *Job) { j.Progress, j.CompanyID = 40, 2 })
	if err != nil || got.Progress != 40 || got.CompanyID != 1 {
		t.Fatalf("update: %+v %v (the company must not change)", got, err)
	}
	list, err := s.CompanyJobs(1)
	if err != nil || len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID {
		t.Fatalf("company 1 jobs, newest first: %+v %v", list, err)
	}
	if _, err := s.UpdateJob(99, func(*Job) {}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing job: %v", err)
	}

	n, err := s.FailUnfinishedJobs("rosti stopped", now)
	if err != nil || n != 2 {
		t.Fatalf("failed %d unfinished jobs (%v), want 2", n, err)
	}
	j, err := s.Job(a.ID)
	if err != nil || j.Status != JobFailed || j.Message != "rosti stopped" || j.Finished.IsZero() {
		t.Fatalf("after a restart: %+v %v", j, err)
	}
	if j, _ := s.Job(3); j.Status != JobDone {
		t.Fatalf("an ended job changed: %+v", j)
	}
}

func TestJobHistoryIsBounded(t *testing.T) {
	s := openTest(t)
	running, err := s.CreateJob(Job{CompanyID: 1, Status: JobRunning})
	if err != nil {
		t.Fatal(err)
	}
	for range MaxJobsPerCompany + 10 {
		if _, err := s.CreateJob(Job{CompanyID: 1, Status: JobDone}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.CompanyJobs(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != MaxJobsPerCompany {
		t.Fatalf("%d jobs kept, want %d", len(list), MaxJobsPerCompany)
	}
	if _, err := s.Job(running.ID); err != nil {
		t.Fatalf("a running job was forgotten: %v", err)
	}
}
