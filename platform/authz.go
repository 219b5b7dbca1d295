package platform

import (
	"fmt"

	"github.com/rosti-paas/rosti/store"
)

// AppRef names an app the way a face knows it: by id within a company (the
// Rosti dialect, the web UI), or by its unique name (Drycc, tsuru, SSH).
// CompanyID 0 means "whichever company holds it".
type AppRef struct {
	CompanyID int64
	ID        int64
	Name      string
}

// AppByID names an app by company and id.
func AppByID(companyID, appID int64) AppRef { return AppRef{CompanyID: companyID, ID: appID} }

// AppNamed names an app by its name.
func AppNamed(name string) AppRef { return AppRef{Name: name} }

// authorizeApp is the one door to an app: every call about an app resolves
// it here, with the actor who asks. An app the actor may not manage is
// ErrNotFound, exactly like one that does not exist, so that ids and names
// of other companies cannot be probed. Who may manage an app: an active
// superuser, the members of the app's company, and the users granted that
// one app (Drycc's perms; see GrantAppPerm), who reach nothing else of the
// company.
func (p *Platform) authorizeApp(actor store.User, ref AppRef) (store.App, error) {
	var (
		a   store.App
		err error
	)
	switch {
	case ref.Name != "":
		a, err = p.store.AppByName(ref.Name)
	default:
		a, err = p.store.App(ref.ID)
	}
	if err != nil {
		return store.App{}, err
	}
	if ref.CompanyID != 0 && a.CompanyID != ref.CompanyID {
		return store.App{}, notFoundApp(ref)
	}
	if err := p.authorizeCompany(actor, a.CompanyID); err != nil {
		if granted, perr := p.store.HasAppPerm(a.ID, actor.ID); perr != nil || !granted || !actor.IsActive {
			return store.App{}, notFoundApp(ref)
		}
	}
	return a, nil
}

func notFoundApp(ref AppRef) error {
	if ref.Name != "" {
		return fmt.Errorf("app %q: %w", ref.Name, store.ErrNotFound)
	}
	return fmt.Errorf("app %d: %w", ref.ID, store.ErrNotFound)
}

// authorizeCompany answers ErrNotFound unless actor may manage the
// company's objects: an active member, or an active superuser.
func (p *Platform) authorizeCompany(actor store.User, companyID int64) error {
	if !actor.IsActive {
		return fmt.Errorf("company %d: %w", companyID, store.ErrNotFound)
	}
	if actor.IsSuperuser {
		_, err := p.store.Company(companyID)
		return err
	}
	_, err := p.store.Role(actor.ID, companyID)
	return err
}

// requireSuperuser guards the operator's calls: the catalogue, images,
// users of others, backups.
func requireSuperuser(actor store.User) error {
	if !actor.IsSuperuser || !actor.IsActive {
		return fmt.Errorf("only an administrator may do this: %w", ErrForbidden)
	}
	return nil
}
