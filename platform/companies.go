package platform

import (
	"context"

	"github.com/rosti-paas/rosti/store"
)

// Companies lists the companies actor is a member of.
func (p *Platform) Companies(_ context.Context, actor store.User) ([]store.Company, error) {
	return p.store.CompaniesOf(actor.ID)
}

// CheckCompany answers ErrNotFound unless actor may manage companyID's
// objects, for faces that answer from a cache of their own.
func (p *Platform) CheckCompany(_ context.Context, actor store.User, companyID int64) error {
	return p.authorizeCompany(actor, companyID)
}
