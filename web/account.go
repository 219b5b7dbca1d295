package web

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pquerna/otp"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/store"
)

// home sends a signed-in user to the apps of their first company.
func (u *UI) home(w http.ResponseWriter, r *http.Request, v *visit) error {
	if len(v.companies) == 0 {
		return back(w, r, "/account", "you are not a member of any company yet")
	}
	return back(w, r, fmt.Sprintf("/c/%d/", v.companies[0].ID), r.URL.Query().Get("flash"))
}

type signInData struct {
	Next         string
	CanRegister  bool
	Registration string
}

func (u *UI) signInData(r *http.Request) signInData {
	return signInData{Next: safeNext(r.FormValue("next")), Registration: u.p.Config().Registration,
		CanRegister: u.p.Config().Registration == platform.RegistrationOpen}
}

// safeNext keeps a redirect after signing in on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (u *UI) signInPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	u.render(w, r, v, http.StatusOK, "signin", page{Title: "Sign in", Data: u.signInData(r)})
	return nil
}

func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// throttledPage answers 429 with the form again when err says the login
// limits (platform's, shared with the API) hold this sign-in back.
func (u *UI) throttledPage(w http.ResponseWriter, r *http.Request, v *visit, form string, p page, err error) bool {
	var throttled *platform.ThrottledError
	if !errors.As(err, &throttled) {
		return false
	}
	p.Flash = fmt.Sprintf("Too many failed sign-ins. Try again in %d seconds.", throttled.RetrySeconds())
	w.Header().Set("Retry-After", strconv.Itoa(throttled.RetrySeconds()))
	u.render(w, r, v, http.StatusTooManyRequests, form, p)
	return true
}

func (u *UI) signIn(w http.ResponseWriter, r *http.Request, v *visit) error {
	username, password := strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password")
	p := page{Title: "Sign in", Data: u.signInData(r), Form: r.PostForm}
	res, err := u.p.SignIn(r.Context(), clientAddress(r), username, password)
	if u.throttledPage(w, r, v, "signin", p, err) {
		return nil
	}
	if errors.Is(err, platform.ErrUnauthorized) {
		p.Flash = "Wrong username or password."
		u.render(w, r, v, http.StatusUnauthorized, "signin", p)
		return nil
	}
	if err != nil {
		return err
	}
	setCookie(w, r, cookiePreSession, "", -1)
	setCookie(w, r, cookieSession, res.Secret, 0)
	next := safeNext(r.PostFormValue("next"))
	if res.NeedsCode {
		http.Redirect(w, r, "/signin/code?next="+url.QueryEscape(next), http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// awaitingCode serves the second step of a sign-in with two factors.
func (u *UI) awaitingCode(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := readCookie(r, cookieSession)
		user, ok := u.p.AwaitingCode(r.Context(), secret)
		if !ok {
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		// The user is not signed in yet: the visit stays anonymous.
		v := &visit{secret: secret, csrf: csrfToken(secret), pendingUser: user.Username}
		u.serve(w, r, v, h)
	})
}

func (u *UI) codePage(w http.ResponseWriter, r *http.Request, v *visit) error {
	u.render(w, r, v, http.StatusOK, "code", page{Title: "Two-factor sign-in", Data: u.signInData(r)})
	return nil
}

func (u *UI) signInCode(w http.ResponseWriter, r *http.Request, v *visit) error {
	p := page{Title: "Two-factor sign-in", Data: u.signInData(r)}
	_, err := u.p.SignInCode(r.Context(), clientAddress(r), v.secret, r.PostFormValue("code"))
	if u.throttledPage(w, r, v, "code", p, err) {
		return nil
	}
	if errors.Is(err, platform.ErrUnauthorized) {
		setCookie(w, r, cookieSession, "", -1)
		return back(w, r, "/signin", "Too many wrong codes. Sign in again.")
	}
	if err != nil {
		return u.invalid(w, r, v, "code", p, err)
	}
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
	return nil
}

func (u *UI) signUpPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	u.render(w, r, v, http.StatusOK, "signup", page{Title: "Sign up", Data: u.signInData(r)})
	return nil
}

func (u *UI) signUp(w http.ResponseWriter, r *http.Request, v *visit) error {
	p := page{Title: "Sign up", Data: u.signInData(r)}
	if r.PostFormValue("password") != r.PostFormValue("password2") {
		return u.invalid(w, r, v, "signup", p, platform.FieldError("password2", "does not match the password"))
	}
	_, err := u.p.Register(r.Context(), nil, platform.NewUser{
		Username: strings.TrimSpace(r.PostFormValue("username")), Password: r.PostFormValue("password"),
		Email: strings.TrimSpace(r.PostFormValue("email")),
	})
	if err != nil {
		return u.invalid(w, r, v, "signup", p, err)
	}
	return back(w, r, "/signin", "Your account is ready. Sign in.")
}

func (u *UI) signOut(w http.ResponseWriter, r *http.Request, v *visit) error {
	if err := u.p.SignOut(r.Context(), v.secret); err != nil {
		return err
	}
	setCookie(w, r, cookieSession, "", -1)
	return back(w, r, "/signin", "You are signed out.")
}

type accountData struct {
	Keys      []store.Key
	Tokens    []store.Token
	NewToken  string // the secret of the token just made, shown this once
	TwoFactor platform.TwoFactorState
	QRCode    template.URL // the pending secret as a QR code image
	Recovery  []string     // recovery codes just made, shown this once
}

func (u *UI) accountPage(w http.ResponseWriter, r *http.Request, v *visit, status int, p page) error {
	var d accountData
	if p.Data != nil {
		d = p.Data.(accountData)
	}
	var err error
	if d.Keys, err = u.p.Keys(r.Context(), v.user); err != nil {
		return err
	}
	if d.Tokens, err = u.p.Tokens(r.Context(), v.user); err != nil {
		return err
	}
	if d.TwoFactor, err = u.p.TwoFactor(r.Context(), v.user); err != nil {
		return err
	}
	if d.TwoFactor.PendingURL != "" {
		d.QRCode = qrCode(d.TwoFactor.PendingURL)
	}
	p.Title, p.Data = "Account", d
	u.render(w, r, v, status, "account", p)
	return nil
}

func (u *UI) account(w http.ResponseWriter, r *http.Request, v *visit) error {
	return u.accountPage(w, r, v, http.StatusOK, page{})
}

// accountInvalid shows the account page again with a form's problems.
func (u *UI) accountInvalid(w http.ResponseWriter, r *http.Request, v *visit, err error) error {
	var ve *platform.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	return u.accountPage(w, r, v, http.StatusBadRequest, page{Errors: ve.Fields, Form: r.PostForm})
}

func (u *UI) changePassword(w http.ResponseWriter, r *http.Request, v *visit) error {
	if r.PostFormValue("new_password") != r.PostFormValue("new_password2") {
		return u.accountInvalid(w, r, v, platform.FieldError("new_password2", "does not match the new password"))
	}
	err := u.p.ChangePassword(r.Context(), v.user, "", r.PostFormValue("current_password"), r.PostFormValue("new_password"), v.secret)
	var ve *platform.ValidationError
	if errors.As(err, &ve) && ve.Fields["password"] != nil {
		ve.Fields["new_password"], ve.Fields["password"] = ve.Fields["password"], nil
		delete(ve.Fields, "password")
	}
	if err != nil {
		return u.accountInvalid(w, r, v, err)
	}
	return back(w, r, "/account", "Your password is changed; your other sessions are signed out.")
}

func (u *UI) addKey(w http.ResponseWriter, r *http.Request, v *visit) error {
	k, err := u.p.AddKey(r.Context(), v.user, r.PostFormValue("name"), r.PostFormValue("key"))
	if err != nil {
		return u.accountInvalid(w, r, v, err)
	}
	return back(w, r, "/account", "Key "+k.Name+" added.")
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", name, r.PathValue(name), store.ErrNotFound)
	}
	return id, nil
}

func (u *UI) deleteKey(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := pathID(r, "key")
	if err != nil {
		return err
	}
	if err := u.p.DeleteKey(r.Context(), v.user, id); err != nil {
		return err
	}
	return back(w, r, "/account", "Key removed.")
}

func (u *UI) createToken(w http.ResponseWriter, r *http.Request, v *visit) error {
	secret, _, err := u.p.CreateToken(r.Context(), v.user, r.PostFormValue("name"))
	if err != nil {
		return u.accountInvalid(w, r, v, err)
	}
	return u.accountPage(w, r, v, http.StatusOK, page{Data: accountData{NewToken: secret},
		Flash: "Token created. Copy it now: it is not shown again."})
}

func (u *UI) revokeToken(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := pathID(r, "token")
	if err != nil {
		return err
	}
	if err := u.p.RevokeToken(r.Context(), v.user, id); err != nil {
		return err
	}
	return back(w, r, "/account", "Token revoked.")
}

// qrCode draws an otpauth:// URL as a PNG data URL, for the phone's
// authenticator app to scan ("" when it cannot).
func qrCode(otpURL string) template.URL {
	key, err := otp.NewKeyFromURL(otpURL)
	if err != nil {
		return ""
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return ""
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return ""
	}
	// A data: URL of a PNG this server drew is safe as an img src.
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))
}

func (u *UI) setUpTwoFactor(w http.ResponseWriter, r *http.Request, v *visit) error {
	if _, err := u.p.BeginTwoFactor(r.Context(), v.user); err != nil {
		return err
	}
	return back(w, r, "/account", "Scan the code with your authenticator app, then type the code it shows.")
}

func (u *UI) enableTwoFactor(w http.ResponseWriter, r *http.Request, v *visit) error {
	codes, err := u.p.EnableTwoFactor(r.Context(), v.user, r.PostFormValue("code"))
	if err != nil {
		return u.accountInvalid(w, r, v, err)
	}
	return u.accountPage(w, r, v, http.StatusOK, page{Data: accountData{Recovery: codes},
		Flash: "Two-factor sign-in is on. Keep the recovery codes somewhere safe: they are not shown again."})
}

func (u *UI) disableTwoFactor(w http.ResponseWriter, r *http.Request, v *visit) error {
	if err := u.p.DisableTwoFactor(r.Context(), v.user, r.PostFormValue("password")); err != nil {
		var ve *platform.ValidationError
		if errors.As(err, &ve) {
			ve.Fields["tf_password"] = ve.Fields["password"]
			delete(ve.Fields, "password")
		}
		return u.accountInvalid(w, r, v, err)
	}
	return back(w, r, "/account", "Two-factor sign-in is off.")
}
