package store

import (
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Job statuses.
const (
	JobPending = "pending"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// Job is a piece of long work (an image pull, later snapshots and
// restores) that users follow by its progress.
type Job struct {
	ID        int64     `json:"id"`
	CompanyID int64     `json:"company_id"`
	Kind      string    `json:"kind"`   // "pull", ...
	Target    string    `json:"target"` // what it works on, e.g. the image
	Status    string    `json:"status"`
	Progress  int       `json:"progress"` // percent
	Message   string    `json:"message"`  // the latest step, or why it failed
	Created   time.Time `json:"created"`
	Started   time.Time `json:"started,omitzero"`
	Finished  time.Time `json:"finished,omitzero"`
}

// Ended tells whether a job has finished, well or not.
func (j Job) Ended() bool { return j.Status == JobDone || j.Status == JobFailed }

// MaxJobsPerCompany bounds the history: creating a job forgets the oldest
// ended jobs of its company beyond it.
const MaxJobsPerCompany = 100

// CreateJob stores a new job and returns it with its id.
func (s *Store) CreateJob(j Job) (Job, error) {
	err := s.update(func(tx *bolt.Tx) error {
		jobs, index := tx.Bucket(bucketJobs), tx.Bucket(bucketCompanyJobs)
		id, err := nextID(jobs)
		if err != nil {
			return err
		}
		j.ID = id
		if err := index.Put(pairKey(j.CompanyID, id), nil); err != nil {
			return err
		}
		if err := putJSON(jobs, itob(id), j); err != nil {
			return err
		}
		return forgetOldJobs(tx, j.CompanyID)
	})
	if err != nil {
		return Job{}, err
	}
	return j, nil
}

func forgetOldJobs(tx *bolt.Tx, companyID int64) error {
	jobs, index := tx.Bucket(bucketJobs), tx.Bucket(bucketCompanyJobs)
	ids := idsWithPrefix(index, itob(companyID)) // oldest first
	excess := len(ids) - MaxJobsPerCompany
	for _, id := range ids {
		if excess <= 0 {
			return nil
		}
		var j Job
		if err := getJSON(jobs, itob(id), &j, fmt.Sprintf("job %d", id)); err != nil {
			return err
		}
		if !j.Ended() {
			continue
		}
		if err := jobs.Delete(itob(id)); err != nil {
			return err
		}
		if err := index.Delete(pairKey(companyID, id)); err != nil {
			return err
		}
		excess--
	}
	return nil
}

// Job returns one job.
func (s *Store) Job(id int64) (Job, error) {
	var j Job
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketJobs), itob(id), &j, fmt.Sprintf("job %d", id))
	})
	return j, err
}

// CompanyJobs lists a company's jobs, newest first.
func (s *Store) CompanyJobs(companyID int64) ([]Job, error) {
	var out []Job
	err := s.view(func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketJobs)
		ids := idsWithPrefix(tx.Bucket(bucketCompanyJobs), itob(companyID))
		for _, id := range slices.Backward(ids) {
			var j Job
			if err := getJSON(jobs, itob(id), &j, fmt.Sprintf("job %d", id)); err != nil {
				return err
			}
			out = append(out, j)
		}
		return nil
	})
	return out, err
}

// UpdateJob changes a job; its id and company stay.
func (s *Store) UpdateJob(id int64, change func(*Job)) (Job, error) {
	var j Job
	err := s.update(func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketJobs)
		if err := getJSON(jobs, itob(id), &j, fmt.Sprintf("job %d", id)); err != nil {
			return err
		}
		before := j
		change(&j)
		j.ID, j.CompanyID, j.Created = before.ID, before.CompanyID, before.Created
		return putJSON(jobs, itob(id), j)
	})
	return j, err
}

// FailUnfinishedJobs marks every job still pending or running as failed
// with message: at start, those are jobs the previous process did not end.
// It returns how many it marked.
func (s *Store) FailUnfinishedJobs(message string, at time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketJobs)
		all, err := listJSON[Job](jobs)
		if err != nil {
			return err
		}
		for _, j := range all {
			if j.Ended() {
				continue
			}
			j.Status, j.Message, j.Finished = JobFailed, message, at
			if err := putJSON(jobs, itob(j.ID), j); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
