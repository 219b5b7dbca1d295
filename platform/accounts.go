package platform

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rosti-paas/rosti/store"
)

// MinPasswordLength is the shortest password accepted for accounts and apps.
const MinPasswordLength = 8

var usernamePattern = regexp.MustCompile(`^[a-zA-Z0-9_.@+-]{1,150}$`)

// NewUser is what registering an account takes.
type NewUser struct {
	Username, Password, Email, FirstName, LastName string
	Superuser                                      bool // honoured only for an admin caller
}

func (n NewUser) validate() error {
	var v ValidationError
	if !usernamePattern.MatchString(n.Username) {
		v.Add("username", "must be 1-150 letters, digits or @.+-_")
	}
	if len(n.Password) < MinPasswordLength {
		v.Add("password", "must be at least %d characters", MinPasswordLength)
	}
	if n.Email != "" {
		if _, err := mail.ParseAddress(n.Email); err != nil {
			v.Add("email", "is not a valid e-mail address")
		}
	}
	return v.Err()
}

// Register creates an account (and its default company) under the server's
// registration policy. actor is the caller, nil when anonymous.
func (p *Platform) Register(_ context.Context, actor *store.User, n NewUser) (store.User, error) {
	admin := actor != nil && actor.IsSuperuser
	switch {
	case p.cfg.Registration == RegistrationClosed && !admin:
		return store.User{}, fmt.Errorf("registration is closed on this server; ask the operator for an account: %w", ErrForbidden)
	case p.cfg.Registration == RegistrationAdminOnly && !admin:
		return store.User{}, fmt.Errorf("only administrators can register users on this server: %w", ErrForbidden)
	}
	if !admin {
		n.Superuser = false
	}
	return p.createUser(n)
}

// CreateUser creates an account regardless of the registration policy; it
// is for administrators (and the operator's command line).
func (p *Platform) CreateUser(_ context.Context, actor store.User, n NewUser) (store.User, error) {
	if err := requireSuperuser(actor); err != nil {
		return store.User{}, err
	}
	return p.createUser(n)
}

func (p *Platform) createUser(n NewUser) (store.User, error) {
	if err := n.validate(); err != nil {
		return store.User{}, err
	}
	hash, err := hashSecret(n.Password)
	if err != nil {
		return store.User{}, err
	}
	u, _, err := p.store.CreateUser(store.User{
		Username: n.Username, Email: n.Email, FirstName: n.FirstName, LastName: n.LastName,
		PasswordHash: hash, IsSuperuser: n.Superuser, IsActive: true, Created: p.now().UTC(),
	})
	if conflict := (*store.ConflictError)(nil); errors.As(err, &conflict) && conflict.Value != n.Username {
		return store.User{}, FieldError("username", "a user with that username already exists: %s (user names are compared without regard to case)", conflict.Value)
	}
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, FieldError("username", "a user with that username already exists")
	}
	if err != nil {
		return store.User{}, err
	}
	p.log.Info("user created", "user", u.Username, "superuser", u.IsSuperuser)
	return u, nil
}

// login checks a username and password and hands back a new token secret.
func (p *Platform) login(ctx context.Context, username, password string) (string, error) {
	u, err := p.checkPassword(username, password)
	if err != nil {
		return "", err
	}
	secret, _, err := p.CreateToken(ctx, u, loginTokenName)
	if err != nil {
		return "", err
	}
	if err := p.store.TouchLogin(u.ID, p.now().UTC()); err != nil {
		return "", err
	}
	return secret, nil
}

func (p *Platform) checkPassword(username, password string) (store.User, error) {
	u, err := p.store.UserByName(username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	// A missing user costs the same time as a wrong password, so the
	// answer's timing does not tell which usernames exist.
	hash := u.PasswordHash
	if hash == "" {
		hash = "$2a$10$YV08YNNTnm3MK4pNCn5U2etQXn0nGUsSpg5hz9zsakKB.o.PV.Ppy"
	}
	if !p.passwordMatches(hash, password) || u.ID == 0 || !u.IsActive {
		return store.User{}, fmt.Errorf("unable to log in with provided credentials: %w", ErrUnauthorized)
	}
	return u, nil
}

// SetPassword replaces a user's password: one's own, or anybody's for an
// administrator.
func (p *Platform) SetPassword(_ context.Context, actor store.User, username, password string) error {
	if !p.isSelf(actor, username) || !actor.IsActive {
		if err := requireSuperuser(actor); err != nil {
			return err
		}
	}
	if len(password) < MinPasswordLength {
		return FieldError("password", "must be at least %d characters", MinPasswordLength)
	}
	u, err := p.store.UserByName(username)
	if err != nil {
		return err
	}
	hash, err := hashSecret(password)
	if err != nil {
		return err
	}
	_, err = p.store.UpdateUser(u.ID, func(u *store.User) error { u.PasswordHash = hash; return nil })
	return err
}

// CreateToken makes a named API token for u and returns its secret, which
// is shown this once and stored only as a hash.
func (p *Platform) CreateToken(_ context.Context, u store.User, name string) (string, store.Token, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", store.Token{}, FieldError("name", "is required")
	}
	if len(name) > 100 {
		return "", store.Token{}, FieldError("name", "must be at most 100 characters")
	}
	raw := make([]byte, 20)
	if _, err := rand.Read(raw); err != nil {
		return "", store.Token{}, err
	}
	secret := hex.EncodeToString(raw)
	t, err := p.store.CreateToken(store.Token{Hash: tokenHash(secret), UserID: u.ID, Name: name, Created: p.now().UTC()})
	return secret, t, err
}

// CreateTokenFor is CreateToken by username, for the operator.
func (p *Platform) CreateTokenFor(ctx context.Context, actor store.User, username, name string) (string, store.Token, error) {
	if err := requireSuperuser(actor); err != nil {
		return "", store.Token{}, err
	}
	u, err := p.store.UserByName(username)
	if err != nil {
		return "", store.Token{}, err
	}
	return p.CreateToken(ctx, u, name)
}

// Tokens lists u's tokens (never their secrets).
func (p *Platform) Tokens(_ context.Context, actor store.User) ([]store.Token, error) {
	return p.store.Tokens(actor.ID)
}

// RevokeToken deletes one of u's tokens.
func (p *Platform) RevokeToken(_ context.Context, actor store.User, id int64) error {
	return p.store.DeleteToken(actor.ID, id)
}

// tokenTouchInterval bounds how often a token's last use is written, so
// that a busy client's reads do not each cost a disk write.
const tokenTouchInterval = time.Minute

// Authenticate returns the user a token secret belongs to.
func (p *Platform) Authenticate(_ context.Context, secret string) (store.User, error) {
	fail := fmt.Errorf("invalid token: %w", ErrUnauthorized)
	if secret == "" {
		return store.User{}, fail
	}
	hash := tokenHash(secret)
	t, err := p.store.TokenByHash(hash)
	if errors.Is(err, store.ErrNotFound) || (err == nil && loginTokenExpired(t, p.now())) {
		return store.User{}, fail
	}
	if err != nil {
		return store.User{}, err
	}
	u, err := p.store.User(t.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.IsActive) {
		return store.User{}, fail
	}
	if err != nil {
		return store.User{}, err
	}
	if now := p.now(); t.LastUsed == nil || now.Sub(*t.LastUsed) > tokenTouchInterval {
		if err := p.store.TouchToken(hash, now.UTC()); err != nil {
			p.log.Warn("record token use", "err", err)
		}
	}
	return u, nil
}

// CancelAccount deletes u's account and tokens, unless that would leave
// a company with apps and no member.
func (p *Platform) CancelAccount(_ context.Context, u store.User) error {
	// A company whose last member goes would keep running apps nobody but
	// the operator could manage, with their names taken: refused.
	companies, err := p.store.CompaniesOf(u.ID)
	if err != nil {
		return err
	}
	for _, c := range companies {
		members, err := p.store.Members(c.ID)
		if err != nil {
			return err
		}
		if len(members) > 1 {
			continue
		}
		apps, err := p.store.CompanyApps(c.ID)
		if err != nil {
			return err
		}
		if len(apps) > 0 {
			names := make([]string, len(apps))
			for i, a := range apps {
				names[i] = a.Name
			}
			return fmt.Errorf("you are the last member of company %q, which has apps (%s): delete them, or add another member to the company, before cancelling your account: %w",
				c.Name, strings.Join(names, ", "), store.ErrConflict)
		}
	}
	if err := p.store.DeleteUser(u.ID); err != nil {
		return err
	}
	p.log.Info("account cancelled", "user", u.Username)
	return nil
}

func tokenHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func hashSecret(s string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(s), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", FieldError("password", "%v", err))
	}
	return string(h), nil
}

// AdminUsername is the account a new server creates for its operator.
const AdminUsername = "admin"

// Bootstrap creates the operator's admin account on a server that has no
// account yet, and returns its generated password (shown once).
func (p *Platform) Bootstrap() (string, bool, error) {
	n, err := p.store.CountUsers()
	if err != nil || n > 0 {
		return "", false, err
	}
	raw := make([]byte, 15)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	password := base64.RawURLEncoding.EncodeToString(raw)
	if _, err := p.createUser(NewUser{Username: AdminUsername, Password: password, Superuser: true}); err != nil {
		return "", false, err
	}
	return password, true, nil
}
