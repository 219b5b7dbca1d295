package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rosti-paas/rosti/store"
)

// DefaultAppPort is where an app is expected to listen unless told otherwise.
const DefaultAppPort = 8080

// reservedAppPort is the port the reference forbids for apps.
const reservedAppPort = 8000

// maxAppName keeps "<app>-<type>-<n>", an app's container and host name,
// within the 63 characters a host name may have.
const maxAppName = 40

var (
	appNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	hostLabel      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// AppInput is a create or a partial update of an app: nil fields are left
// as they are.
type AppInput struct {
	Name        *string
	Image       *string
	Domains     *[]string
	Mode        *string
	Plan        *int64
	AppPort     *int
	SSHKeys     *[]string
	SSHPassword *string // "" means unchanged, as listings show it empty
	Healthcheck *string // "" means a TCP connect
}

// Apps lists a company's apps.
func (p *Platform) Apps(_ context.Context, actor store.User, companyID int64) ([]store.App, error) {
	if err := p.authorizeCompany(actor, companyID); err != nil {
		return nil, err
	}
	return p.store.CompanyApps(companyID)
}

// App returns an app; one the actor may not manage is ErrNotFound, exactly
// like one that does not exist.
func (p *Platform) App(_ context.Context, actor store.User, ref AppRef) (store.App, error) {
	return p.authorizeApp(actor, ref)
}

// CreateApp validates in and stores a new app of companyID, meant to run.
func (p *Platform) CreateApp(_ context.Context, actor store.User, companyID int64, in AppInput) (store.App, error) {
	u := actor
	if err := p.authorizeCompany(actor, companyID); err != nil {
		return store.App{}, err
	}
	var v ValidationError
	for field, missing := range map[string]bool{"name": in.Name == nil, "image": in.Image == nil, "plan": in.Plan == nil} {
		if missing {
			v.Add(field, "this field is required")
		}
	}
	if err := v.Err(); err != nil {
		return store.App{}, err
	}
	a := store.App{
		CompanyID: companyID, OwnerID: u.ID, Name: *in.Name, Created: p.now().UTC(),
		AppPort: DefaultAppPort, Mode: store.ModeHTTP, DesiredState: store.StateRunning,
		Processes: map[string]int{"web": 1}, Domains: []string{}, SSHKeys: []string{},
	}
	if err := p.applyInput(&a, in, true); err != nil {
		return store.App{}, err
	}
	created, err := p.store.CreateApp(a)
	if err != nil {
		return store.App{}, uniquenessError(err)
	}
	first, err := p.store.CreateRelease(store.Release{
		AppID: created.ID, Image: created.Image, ProcessTypes: []string{"web"}, Source: SourceCreate,
		Summary: u.Username + " created initial release", Author: u.Username, Created: created.Created, Status: store.ReleaseSucceeded,
	})
	if err != nil {
		return store.App{}, err
	}
	if created, err = p.store.UpdateApp(created.ID, func(a *store.App) error { a.Release = first.Version; return nil }); err != nil {
		return store.App{}, err
	}
	if p.disks != nil {
		// The disk is allocated now, so that an app the server has no
		// room for is refused instead of failing to run later; once the
		// app is complete, since a reconciler's pass may see it from its
		// first write (and its containers make the disk the same way).
		if _, err := p.ensureVolume(created); err != nil {
			p.undoCreate(created)
			return store.App{}, err
		}
	}
	p.log.Info("app created", "app", created.Name, "company", companyID, "user", u.Username)
	p.changed(created.ID)
	return created, nil
}

// UpdateApp applies a partial update to an app.
func (p *Platform) UpdateApp(ctx context.Context, actor store.User, ref AppRef, in AppInput) (store.App, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return store.App{}, err
	}
	appID := a.ID
	unlock := p.deploys.Lock(appID)
	defer unlock()
	if in.Plan != nil && *in.Plan != a.PlanID && p.disks != nil {
		// The disk is sized first: a plan whose disk does not fit is
		// refused with nothing changed.
		if plan, err := p.store.Plan(*in.Plan); err == nil {
			if err := p.resizeVolume(a, plan.DiskMB); err != nil {
				return store.App{}, err
			}
		}
	}
	var image string
	updated, err := p.store.UpdateApp(appID, func(a *store.App) error {
		if in.Name != nil && *in.Name != a.Name {
			return FieldError("name", "cannot be changed once the app is created")
		}
		before := a.Image
		if err := p.applyInput(a, in, false); err != nil {
			return err
		}
		// A new image is a new release, made below once the rest is stored.
		if a.Image != before {
			image, a.Image = a.Image, before
		}
		return nil
	})
	if err != nil {
		return store.App{}, uniquenessError(err)
	}
	p.changed(appID)
	if image == "" {
		return updated, nil
	}
	if _, err := p.deploy(ctx, actor.Username, appID, change{
		source: SourceImage, image: image, summary: actor.Username + " deployed " + image,
	}); err != nil {
		return store.App{}, err
	}
	return p.store.App(appID)
}

// DeleteApp removes an app, and waits (as long as ctx allows) until its
// containers, logs and volume are gone.
func (p *Platform) DeleteApp(ctx context.Context, actor store.User, ref AppRef) error {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return err
	}
	if err := p.store.DeleteApp(a.ID); err != nil {
		return err
	}
	p.log.Info("app deleted", "app", a.Name, "user", actor.Username)
	if p.reconciler != nil {
		p.reconciler.markDeleted(a)
	}
	// The app is gone for its users whatever happens next: what it left
	// (containers, logs, volume) that cannot be removed now is retried by
	// the reconciler's passes, not reported as a failed delete.
	if err := p.applied(ctx, a.ID); err != nil {
		p.log.Warn("removing what a deleted app left goes on in the background", "app", a.Name, "err", err)
	}
	return nil
}

// undoCreate removes an app CreateApp could not complete, as a delete does.
func (p *Platform) undoCreate(a store.App) {
	if err := p.store.DeleteApp(a.ID); err != nil {
		p.log.Error("undoing an app whose disk could not be made", "app", a.Name, "err", err)
	}
	if p.reconciler == nil {
		if err := p.removeVolume(a); err != nil {
			p.log.Error("undoing an app whose disk could not be made", "app", a.Name, "err", err)
		}
		return
	}
	p.reconciler.markDeleted(a)
	p.changed(a.ID)
}

// DefaultDomain is the host name an app gets on this server.
func (p *Platform) DefaultDomain(appName string) string {
	return appName + "." + p.cfg.AppsDomain
}

// uniquenessError turns a store conflict into the field that caused it.
func uniquenessError(err error) error {
	var taken *store.ConflictError
	if !errors.As(err, &taken) {
		return err
	}
	switch taken.What {
	case "app name":
		return FieldError("name", "an app with this name already exists")
	case "domain":
		return FieldError("domains", "%q is already used by another app", taken.Value)
	}
	return err
}

// applyInput validates the fields in carries and copies them into a.
func (p *Platform) applyInput(a *store.App, in AppInput, creating bool) error {
	var v ValidationError
	switch {
	case !creating:
	case !appNamePattern.MatchString(a.Name) || len(a.Name) > maxAppName:
		v.Add("name", "must be a DNS label of 1-%d lowercase letters, digits or '-', not starting or ending with '-'", maxAppName)
	case len(a.Name) >= 4 && a.Name[2:4] == "--":
		// "xn--" and its kin are internationalized names in disguise.
		v.Add("name", "must not have '--' as its 3rd and 4th characters (DNS keeps those for internationalized names)")
	}
	if creating && a.Name == gitLogin {
		v.Add("name", "%q is the SSH login of git remotes (ssh://%s@host/<app>.git); pick another name", gitLogin, gitLogin)
	}
	if in.Image != nil {
		rt, ok, err := p.runtimeByImage(*in.Image)
		if err != nil {
			return err
		}
		if ok {
			a.Image = rt.Image
		} else {
			v.Add("image", "%q is not a known runtime; pick one from the runtimes list", *in.Image)
		}
	}
	if in.Plan != nil {
		if _, err := p.store.Plan(*in.Plan); errors.Is(err, store.ErrNotFound) {
			v.Add("plan", "plan %d does not exist; pick one from the plans list", *in.Plan)
		} else if err != nil {
			return err
		} else {
			a.PlanID = *in.Plan
		}
	}
	if in.AppPort != nil {
		if port := *in.AppPort; port < 1024 || port > 65535 || port == reservedAppPort {
			v.Add("app_port", "must be between 1024 and 65535 and not %d", reservedAppPort)
		} else {
			a.AppPort = port
		}
	}
	if in.Healthcheck != nil {
		if problem := checkHealthPath(*in.Healthcheck); problem != "" {
			v.Add("healthcheck", "%s", problem)
		} else {
			a.Healthcheck = *in.Healthcheck
		}
	}
	if in.Mode != nil {
		if m := *in.Mode; m != store.ModeHTTP && m != store.ModeHTTPSLE {
			v.Add("mode", "must be %q or %q", store.ModeHTTP, store.ModeHTTPSLE)
		} else {
			a.Mode = m
		}
	}
	if in.Domains != nil || creating {
		var domains []string
		if in.Domains != nil {
			domains = *in.Domains
		}
		if clean, problems := p.cleanDomains(a.Name, domains); len(problems) > 0 {
			for _, problem := range problems {
				v.Add("domains", "%s", problem)
			}
		} else {
			a.Domains = clean
		}
	}
	if in.SSHKeys != nil {
		keys := make([]string, 0, len(*in.SSHKeys))
		for i, k := range *in.SSHKeys {
			k = strings.TrimSpace(k)
			if k == "" {
				continue
			}
			if _, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k)); err != nil {
				v.Add("ssh_keys", "key %d (%s) is not a valid SSH public key", i+1, abbreviate(k))
				continue
			}
			keys = append(keys, k)
		}
		a.SSHKeys = keys
	}
	if in.SSHPassword != nil && *in.SSHPassword != "" {
		if len(*in.SSHPassword) < MinPasswordLength {
			v.Add("ssh_password", "must be at least %d characters", MinPasswordLength)
		} else {
			hash, err := hashSecret(*in.SSHPassword)
			if err != nil {
				return err
			}
			a.SSHPasswordHash = hash
		}
	}
	return v.Err()
}

// maxDomains bounds the names one app may claim, its default included.
const maxDomains = 100

// cleanDomains checks and normalizes an app's domains. The app's default
// domain always comes first, whatever else it has, as on Heroku or Dokku:
// the app can be tried there before DNS moves, and it cannot be removed.
// Names under the apps domain are reserved for the app they are named
// after; the apps domain itself, the panel domain and names under it, and
// IP addresses belong to no app (an app holding the server's address would
// get every request sent to the bare IP); wildcards only where the operator
// allows them.
func (p *Platform) cleanDomains(appName string, domains []string) ([]string, []string) {
	clean := []string{p.DefaultDomain(appName)}
	var problems []string
	seen := map[string]bool{clean[0]: true}
	for _, d := range domains {
		d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		if d == "" || seen[d] {
			continue
		}
		seen[d] = true
		if problem := p.domainProblem(appName, d); problem != "" {
			problems = append(problems, problem)
			continue
		}
		clean = append(clean, d)
	}
	if len(clean) > maxDomains {
		problems = append(problems, fmt.Sprintf("%d domains given with the default one; an app may have at most %d", len(clean), maxDomains))
	}
	return clean, problems
}

// domainProblem says why an app may not claim the normalized name d, or
// "" when it may.
func (p *Platform) domainProblem(appName, d string) string {
	bare := strings.TrimPrefix(d, "*.")
	labels := strings.Split(bare, ".")
	if net.ParseIP(strings.Trim(d, "[]")) != nil || strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Sprintf("%q is an IP address; give a host name that points to this server", d)
	}
	if !validHostName(d) {
		return fmt.Sprintf("%q is not a valid host name", d)
	}
	if d == p.DefaultDomain(appName) {
		return ""
	}
	for _, reserved := range []string{p.cfg.AppsDomain, p.cfg.PanelDomain} {
		if reserved == "" {
			continue
		}
		if d == reserved || bare == reserved || strings.HasSuffix(d, "."+reserved) {
			if reserved == p.cfg.AppsDomain {
				return fmt.Sprintf("%q is under %s, where only %s belongs to this app", d, reserved, p.DefaultDomain(appName))
			}
			return fmt.Sprintf("%q is this server's own panel domain (or under it)", d)
		}
	}
	if d != bare && !p.cfg.WildcardDomains {
		return fmt.Sprintf("%q is a wildcard; this server does not allow wildcard domains, list each name instead", d)
	}
	return ""
}

// validHostName accepts a DNS name of two or more labels, optionally a
// wildcard "*." in front.
func validHostName(d string) bool {
	d = strings.TrimPrefix(d, "*.")
	if len(d) > 253 {
		return false
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !hostLabel.MatchString(l) {
			return false
		}
	}
	return true
}

func abbreviate(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

// maxHealthPath bounds a health check path like a sane request line.
const maxHealthPath = 1024

// checkHealthPath says what is wrong with an app's health check path, if
// anything: it is requested as is from the app, so it must be an absolute
// path with an optional query and nothing a request line cannot carry.
func checkHealthPath(path string) string {
	if path == "" {
		return ""
	}
	if len(path) > maxHealthPath {
		return fmt.Sprintf("must be at most %d characters", maxHealthPath)
	}
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return fmt.Sprintf("%q must be a path starting with a single '/', like /healthz (or empty for a TCP check)", path)
	}
	if strings.ContainsFunc(path, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) {
		return fmt.Sprintf("%q must not contain spaces, control characters or '#'", path)
	}
	if _, err := url.ParseRequestURI(path); err != nil {
		return fmt.Sprintf("%q is not a valid URL path", path)
	}
	return ""
}
