package platform

import (
	"context"
	"fmt"

	"github.com/rosti-paas/rosti/store"
)

// Job kinds.
const JobPull = "pull"

// Jobs lists a company's jobs, newest first.
func (p *Platform) Jobs(_ context.Context, actor store.User, companyID int64) ([]store.Job, error) {
	if err := p.authorizeCompany(actor, companyID); err != nil {
		return nil, err
	}
	return p.store.CompanyJobs(companyID)
}

// Job returns one of a company's jobs; another company's is ErrNotFound.
func (p *Platform) Job(_ context.Context, actor store.User, companyID, jobID int64) (store.Job, error) {
	if err := p.authorizeCompany(actor, companyID); err != nil {
		return store.Job{}, err
	}
	j, err := p.store.Job(jobID)
	if err != nil {
		return store.Job{}, err
	}
	if j.CompanyID != companyID {
		return store.Job{}, fmt.Errorf("job %d: %w", jobID, store.ErrNotFound)
	}
	return j, nil
}

// FailInterruptedJobs marks the jobs a previous run of rosti left unfinished
// as failed, so none stays "running" for ever. Call it at start, before
// anything makes new jobs.
func (p *Platform) FailInterruptedJobs() error {
	n, err := p.store.FailUnfinishedJobs("interrupted: rosti stopped while this job ran", p.now().UTC())
	if n > 0 {
		p.log.Warn("jobs interrupted by the previous stop marked failed", "jobs", n)
	}
	return err
}
