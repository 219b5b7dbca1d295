package platform

import "github.com/rosti-paas/rosti/store"

// Companies lists the companies u is a member of.
func (p *Platform) Companies(u store.User) ([]store.Company, error) { return p.store.CompaniesOf(u.ID) }

// company returns the company if u is a member, ErrNotFound otherwise.
func (p *Platform) company(u store.User, companyID int64) (store.Company, error) {
	if _, err := p.store.Role(u.ID, companyID); err != nil {
		return store.Company{}, err
	}
	return p.store.Company(companyID)
}

// CheckMember answers ErrNotFound unless u is a member of companyID.
func (p *Platform) CheckMember(u store.User, companyID int64) error {
	_, err := p.company(u, companyID)
	return err
}
