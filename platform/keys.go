package platform

import (
	"bytes"
	"context"
	"errors"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rosti-paas/rosti/store"
)

// maxKeyNameLength bounds a key's name, as for tokens.
const maxKeyNameLength = 100

// Keys lists u's SSH public keys.
func (p *Platform) Keys(_ context.Context, actor store.User) ([]store.Key, error) {
	return p.store.Keys(actor.ID)
}

// AddKey adds one SSH public key, given as an authorized_keys line, to u's
// keys; it then opens every app of u's companies over SSH. name defaults
// to the key's comment, else its fingerprint.
func (p *Platform) AddKey(_ context.Context, u store.User, name, authorizedKey string) (store.Key, error) {
	pub, comment, _, rest, err := gossh.ParseAuthorizedKey([]byte(strings.TrimSpace(authorizedKey)))
	if err != nil || len(bytes.TrimSpace(rest)) > 0 {
		return store.Key{}, FieldError("key", "must be one SSH public key, as in authorized_keys: \"ssh-ed25519 AAAA... you@host\"")
	}
	fingerprint := gossh.FingerprintSHA256(pub)
	name = strings.TrimSpace(name)
	if name == "" {
		name = comment
	}
	if name == "" {
		name = fingerprint
	}
	if len(name) > maxKeyNameLength {
		return store.Key{}, FieldError("name", "must be at most %d characters", maxKeyNameLength)
	}
	k, err := p.store.CreateKey(store.Key{
		UserID: u.ID, Name: name, Fingerprint: fingerprint, Created: p.now().UTC(),
		PublicKey: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub))),
	})
	if errors.Is(err, store.ErrConflict) {
		return store.Key{}, FieldError("key", "you already added this key (%s)", fingerprint)
	}
	if err != nil {
		return store.Key{}, err
	}
	p.log.Info("ssh key added", "user", u.Username, "fingerprint", fingerprint)
	return k, nil
}

// DeleteKey removes one of u's keys; another user's key is ErrNotFound.
func (p *Platform) DeleteKey(_ context.Context, u store.User, id int64) error {
	if err := p.store.DeleteKey(u.ID, id); err != nil {
		return err
	}
	p.log.Info("ssh key deleted", "user", u.Username, "key_id", id)
	return nil
}
