package platform

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/rosti-paas/rosti/dbserver"
	"github.com/rosti-paas/rosti/store"
)

// Databases is what storages need of the database servers (dbserver).
// Names are a storage's database, which is also its user's name.
type Databases interface {
	// Create makes the database and its user and says where clients
	// connect; host "" means this host, which apps reach at their gateway.
	Create(ctx context.Context, typ, name, password string, connLimit int) (host string, port int, err error)
	SetPassword(ctx context.Context, typ, name, password string) error
	Size(ctx context.Context, typ, name string) (int64, error)
	Drop(ctx context.Context, typ, name string) error
}

// Gateways says at which address a group's containers reach the host.
type Gateways interface {
	Gateway(ctx context.Context, group string) (string, error)
}

// StorageConnectionLimit is how many connections one storage's user may
// hold at once, so that no company's app exhausts a server shared by all.
const StorageConnectionLimit = 50

// sizeTimeout bounds the wait for sizes, so that a server that is down (or
// still starting) leaves them unknown instead of holding up a listing.
const sizeTimeout = 3 * time.Second

// maxStorageNoteLength bounds a storage's note, a short description.
const maxStorageNoteLength = 1000

// StorageInput is a new storage or a change to one: nil fields are absent.
type StorageInput struct {
	Type     *string // store.StoragePostgres or store.StorageMariaDB; set once
	Password *string // sent to the database server, never stored
	Note     *string
}

// StorageInfo is a storage with the space it takes, when its server said.
type StorageInfo struct {
	store.Storage
	Size *int64
}

// storagesEnabled answers a clear 400 on a server without database servers.
func (p *Platform) storagesEnabled() error {
	if p.databases == nil {
		return fmt.Errorf("storages are not enabled on this server: %w", store.ErrInvalid)
	}
	return nil
}

// Storages lists a company's storages with their sizes.
func (p *Platform) Storages(ctx context.Context, u store.User, companyID int64) ([]StorageInfo, error) {
	if err := p.authorizeCompany(u, companyID); err != nil {
		return nil, err
	}
	list, err := p.store.CompanyStorages(companyID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, sizeTimeout) // for the whole list
	defer cancel()
	out := make([]StorageInfo, 0, len(list))
	for _, s := range list {
		out = append(out, p.withSize(ctx, s))
	}
	return out, nil
}

// Storage returns one of a company's storages; another company's is
// ErrNotFound, exactly like one that does not exist.
func (p *Platform) Storage(ctx context.Context, u store.User, companyID, id int64) (StorageInfo, error) {
	s, err := p.storage(u, companyID, id)
	if err != nil {
		return StorageInfo{}, err
	}
	return p.withSize(ctx, s), nil
}

func (p *Platform) storage(u store.User, companyID, id int64) (store.Storage, error) {
	if err := p.authorizeCompany(u, companyID); err != nil {
		return store.Storage{}, err
	}
	s, err := p.store.Storage(id)
	if err != nil {
		return store.Storage{}, err
	}
	if s.CompanyID != companyID {
		return store.Storage{}, fmt.Errorf("storage %d: %w", id, store.ErrNotFound)
	}
	return s, nil
}

// withSize asks the storage's server for its size; a server that does not
// answer leaves it unknown rather than failing a listing.
func (p *Platform) withSize(ctx context.Context, s store.Storage) StorageInfo {
	info := StorageInfo{Storage: s}
	if p.databases == nil {
		return info
	}
	ctx, cancel := context.WithTimeout(ctx, sizeTimeout)
	defer cancel()
	size, err := p.databases.Size(ctx, s.Type, s.Database)
	if err != nil {
		p.log.Warn("storage size", "storage", s.ID, "database", s.Database, "err", err)
		return info
	}
	info.Size = &size
	return info
}

func validateStorageInput(in StorageInput, creating bool) error {
	var v ValidationError
	if creating {
		switch {
		case in.Type == nil:
			v.Add("type", "this field is required: mariadb or pgsql")
		case *in.Type != store.StorageMariaDB && *in.Type != store.StoragePostgres:
			v.Add("type", "must be mariadb or pgsql, not %q", *in.Type)
		}
		if in.Password == nil {
			v.Add("password", "this field is required")
		}
	}
	if in.Password != nil {
		if msg := dbserver.ValidPassword(*in.Password, MinPasswordLength); msg != "" {
			v.Add("password", "%s", msg)
		}
	}
	if in.Note != nil && (utf8.RuneCountInString(*in.Note) > maxStorageNoteLength || !utf8.ValidString(*in.Note)) {
		v.Add("note", "must be at most %d characters of text", maxStorageNoteLength)
	}
	return v.Err()
}

// storageName is a storage's database and user name: unique on a server,
// never reused (ids are not), and plain enough for any client.
func storageName(companyID, id int64) string {
	return "c" + strconv.FormatInt(companyID, 10) + "_s" + strconv.FormatInt(id, 10)
}

// CreateStorage makes a database of the given type with a user that logs
// in with the given password, and returns how to connect to it.
func (p *Platform) CreateStorage(ctx context.Context, u store.User, companyID int64, in StorageInput) (StorageInfo, error) {
	if err := p.authorizeCompany(u, companyID); err != nil {
		return StorageInfo{}, err
	}
	if err := validateStorageInput(in, true); err != nil {
		return StorageInfo{}, err
	}
	if err := p.storagesEnabled(); err != nil {
		return StorageInfo{}, err
	}
	note := ""
	if in.Note != nil {
		note = *in.Note
	}
	// The record comes first, so that a database never exists without
	// one: a failure below removes it again.
	s, err := p.store.CreateStorage(store.Storage{CompanyID: companyID, Type: *in.Type, Note: note, Created: p.now().UTC()},
		func(id int64) string { return storageName(companyID, id) })
	if err != nil {
		return StorageInfo{}, err
	}
	host, port, err := p.databases.Create(ctx, s.Type, s.Database, *in.Password, StorageConnectionLimit)
	if err != nil { // the database servers leave nothing half made
		return StorageInfo{}, fmt.Errorf("create storage %s: %w", s.Database, errors.Join(err, p.store.DeleteStorage(s.ID)))
	}
	if host == "" {
		host, err = p.gatewayOf(ctx, companyID)
	}
	if err == nil {
		s, err = p.store.UpdateStorage(s.ID, func(st *store.Storage) error { st.Host, st.Port = host, port; return nil })
	}
	if err != nil {
		cleanup := context.WithoutCancel(ctx)
		err = errors.Join(err, p.databases.Drop(cleanup, s.Type, s.Database), p.store.DeleteStorage(s.ID))
		return StorageInfo{}, fmt.Errorf("create storage %s: %w", s.Database, err)
	}
	p.log.Info("storage created", "storage", s.ID, "type", s.Type, "database", s.Database, "company", companyID, "user", u.Username)
	return p.withSize(ctx, s), nil
}

// gatewayOf is where the company's apps reach this host: their bridge's
// gateway (the group is the one their containers run in).
func (p *Platform) gatewayOf(ctx context.Context, companyID int64) (string, error) {
	if p.gateways == nil {
		return "127.0.0.1", nil
	}
	return p.gateways.Gateway(ctx, "company-"+strconv.FormatInt(companyID, 10))
}

// UpdateStorage sets a new password (the old one stops working) and/or
// the note; the type cannot change.
func (p *Platform) UpdateStorage(ctx context.Context, u store.User, companyID, id int64, in StorageInput) (StorageInfo, error) {
	s, err := p.storage(u, companyID, id)
	if err != nil {
		return StorageInfo{}, err
	}
	if in.Type != nil && *in.Type != s.Type {
		return StorageInfo{}, FieldError("type", "cannot be changed; create a new storage instead")
	}
	if in.Password == nil && in.Note == nil {
		return StorageInfo{}, FieldError("password", "send a new password, a note or both")
	}
	if err := validateStorageInput(in, false); err != nil {
		return StorageInfo{}, err
	}
	if in.Password != nil {
		if err := p.storagesEnabled(); err != nil {
			return StorageInfo{}, err
		}
		if err := p.databases.SetPassword(ctx, s.Type, s.Database, *in.Password); err != nil {
			return StorageInfo{}, err
		}
		p.log.Info("storage password changed", "storage", s.ID, "database", s.Database, "user", u.Username)
	}
	if in.Note != nil {
		if s, err = p.store.UpdateStorage(id, func(st *store.Storage) error { st.Note = *in.Note; return nil }); err != nil {
			return StorageInfo{}, err
		}
	}
	return p.withSize(ctx, s), nil
}

// DeleteStorage drops the database and its user, then forgets the storage;
// when the drop fails the storage stays, so deleting again retries.
func (p *Platform) DeleteStorage(ctx context.Context, u store.User, companyID, id int64) error {
	s, err := p.storage(u, companyID, id)
	if err != nil {
		return err
	}
	if err := p.storagesEnabled(); err != nil {
		return err
	}
	if err := p.databases.Drop(ctx, s.Type, s.Database); err != nil {
		return err
	}
	if err := p.store.DeleteStorage(id); err != nil {
		return err
	}
	p.log.Info("storage deleted", "storage", s.ID, "database", s.Database, "user", u.Username)
	return nil
}
