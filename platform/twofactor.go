package platform

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/rosti-paas/rosti/store"
)

// Two-factor sign-in: TOTP codes of an authenticator app (RFC 6238: 6
// digits, 30 s steps, SHA-1, as every app takes them), with one-time
// recovery codes. It guards web sign-ins; API tokens are unaffected.
const (
	totpPeriod    = 30
	recoveryCodes = 10
	totpIssuer    = "rosti"
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TwoFactorSetup is what an authenticator app needs: the secret and the
// otpauth:// URL a QR code carries.
type TwoFactorSetup struct {
	Secret string
	URL    string
}

// TwoFactorState says whether a user's second factor is on and how many
// recovery codes are left.
type TwoFactorState struct {
	Enabled       bool
	RecoveryLeft  int
	PendingSecret string // set up but not confirmed yet
	PendingURL    string
}

func (p *Platform) twoFactorOn(userID int64) (bool, error) {
	tf, err := p.store.TwoFactor(userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return tf.Enabled, err
}

// TwoFactor reports on the actor's second factor.
func (p *Platform) TwoFactor(_ context.Context, actor store.User) (TwoFactorState, error) {
	tf, err := p.store.TwoFactor(actor.ID)
	if errors.Is(err, store.ErrNotFound) {
		return TwoFactorState{}, nil
	}
	if err != nil {
		return TwoFactorState{}, err
	}
	if !tf.Enabled {
		return TwoFactorState{PendingSecret: tf.Secret, PendingURL: otpURL(actor.Username, tf.Secret)}, nil
	}
	return TwoFactorState{Enabled: true, RecoveryLeft: len(tf.RecoveryHashes)}, nil
}

func otpURL(username, secret string) string {
	key, err := otp.NewKeyFromURL(fmt.Sprintf("otpauth://totp/%s:%s?secret=%s&issuer=%s&period=%d&digits=6&algorithm=SHA1",
		totpIssuer, username, secret, totpIssuer, totpPeriod))
	if err != nil {
		return ""
	}
	return key.URL()
}

// BeginTwoFactor makes a new TOTP secret for the actor, which is not
// required at sign-in until EnableTwoFactor confirms a code of it.
func (p *Platform) BeginTwoFactor(_ context.Context, actor store.User) (TwoFactorSetup, error) {
	if on, err := p.twoFactorOn(actor.ID); err != nil {
		return TwoFactorSetup{}, err
	} else if on {
		return TwoFactorSetup{}, fmt.Errorf("two-factor sign-in is already on; turn it off first: %w", store.ErrConflict)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: actor.Username, Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return TwoFactorSetup{}, err
	}
	if err := p.store.PutTwoFactor(store.TwoFactor{UserID: actor.ID, Secret: key.Secret(), Created: p.now().UTC()}); err != nil {
		return TwoFactorSetup{}, err
	}
	return TwoFactorSetup{Secret: key.Secret(), URL: key.URL()}, nil
}

// EnableTwoFactor turns the second factor on once the user shows a code
// of the new secret, and returns the recovery codes (shown once; stored
// as hashes).
func (p *Platform) EnableTwoFactor(_ context.Context, actor store.User, code string) ([]string, error) {
	codes := make([]string, recoveryCodes)
	hashes := make([]string, recoveryCodes)
	for i := range codes {
		raw := make([]byte, 10)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		c := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw))
		codes[i] = c[:8] + "-" + c[8:16]
		hashes[i] = tokenHash(normalizeRecovery(codes[i]))
	}
	now := p.now()
	_, err := p.store.UpdateTwoFactor(actor.ID, func(tf *store.TwoFactor) error {
		if tf.Enabled {
			return fmt.Errorf("two-factor sign-in is already on: %w", store.ErrConflict)
		}
		if !acceptTOTP(tf, code, now) {
			return FieldError("code", "is not the current code of your authenticator; check its clock and try the next code")
		}
		tf.Enabled, tf.RecoveryHashes = true, hashes
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, FieldError("code", "set up two-factor sign-in first")
	}
	if err != nil {
		return nil, err
	}
	p.log.Info("two-factor sign-in turned on", "user", actor.Username)
	return codes, nil
}

// DisableTwoFactor turns the actor's second factor off, after checking
// their password.
func (p *Platform) DisableTwoFactor(_ context.Context, actor store.User, password string) error {
	if _, err := p.checkPassword(actor.Username, password); err != nil {
		return FieldError("password", "is not your current password")
	}
	if err := p.store.DeleteTwoFactor(actor.ID); err != nil {
		return err
	}
	p.log.Info("two-factor sign-in turned off", "user", actor.Username)
	return nil
}

// useSecondFactor checks a code of the user's authenticator, or uses up a
// recovery code.
func (p *Platform) useSecondFactor(userID int64, code string) (bool, error) {
	now := p.now()
	accepted := false
	_, err := p.store.UpdateTwoFactor(userID, func(tf *store.TwoFactor) error {
		if !tf.Enabled {
			return fmt.Errorf("two-factor sign-in is off: %w", store.ErrInvalid)
		}
		if acceptTOTP(tf, code, now) {
			accepted = true
			return nil
		}
		hash := tokenHash(normalizeRecovery(code))
		if i := slices.Index(tf.RecoveryHashes, hash); i >= 0 {
			tf.RecoveryHashes = slices.Delete(tf.RecoveryHashes, i, i+1)
			accepted = true
		}
		return nil
	})
	return accepted, err
}

// acceptTOTP checks a 6-digit code for the current step or its neighbours
// (clocks drift), never for a step already used, and records the step.
func acceptTOTP(tf *store.TwoFactor, code string, now time.Time) bool {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 {
		return false
	}
	step := now.Unix() / totpPeriod
	for _, s := range []int64{step - 1, step, step + 1} {
		if s <= tf.LastStep {
			continue
		}
		want, err := totp.GenerateCodeCustom(tf.Secret, time.Unix(s*totpPeriod, 0), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			tf.LastStep = s
			return true
		}
	}
	return false
}

func normalizeRecovery(code string) string {
	return strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(code)))
}

// RequireTwoFactor makes every user turn on two-factor sign-in before
// using the web UI (or stops requiring it); administrators only.
func (p *Platform) RequireTwoFactor(_ context.Context, actor store.User, required bool) error {
	if err := requireSuperuser(actor); err != nil {
		return err
	}
	s, err := p.store.Settings()
	if err != nil {
		return err
	}
	s.RequireTwoFactor = required
	if err := p.store.PutSettings(s); err != nil {
		return err
	}
	p.log.Info("two-factor sign-in requirement changed", "required", required, "by", actor.Username)
	return nil
}

// TwoFactorRequired tells whether the server requires two-factor sign-in.
func (p *Platform) TwoFactorRequired(_ context.Context) (bool, error) {
	s, err := p.store.Settings()
	return s.RequireTwoFactor, err
}

// MustSetUpTwoFactor tells whether actor has to turn on two-factor
// sign-in before doing anything else in the web UI.
func (p *Platform) MustSetUpTwoFactor(ctx context.Context, actor store.User) (bool, error) {
	required, err := p.TwoFactorRequired(ctx)
	if err != nil || !required {
		return false, err
	}
	on, err := p.twoFactorOn(actor.ID)
	return !on, err
}
