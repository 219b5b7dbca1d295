package platform

import (
	"context"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/rosti-paas/rosti/proxy"
	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// Router is what platform needs of the proxy.
type Router interface {
	SetRoutes(routes []proxy.Route, certs []proxy.Cert)
	WaitDrained(ctx context.Context, upstreams []string) error
	Certificates() []proxy.CertStatus
}

// publishRoutes hands the proxy a fresh table: every app's domains to its
// running web containers, minus those being drained.
func (r *reconciler) publishRoutes(ctx context.Context) error {
	if r.p.router == nil {
		return nil
	}
	r.routes.Lock()
	defer r.routes.Unlock()
	apps, err := r.p.store.Apps()
	if err != nil {
		return err
	}
	cs, err := r.p.containers.List(ctx, nil)
	if err != nil {
		return err
	}
	byApp := map[string][]rtm.Instance{}
	for _, c := range cs {
		byApp[c.Labels[rtm.LabelAppID]] = append(byApp[c.Labels[rtm.LabelAppID]], c)
	}
	r.mu.Lock()
	leaving := maps.Clone(r.leaving)
	r.mu.Unlock()
	routes := make([]proxy.Route, 0, len(apps))
	for _, a := range apps {
		routes = append(routes, route(a, r.p.DefaultDomain(a.Name), byApp[strconv.FormatInt(a.ID, 10)], leaving))
	}
	certs, err := r.p.store.Certs(0)
	if err != nil {
		return err
	}
	r.p.router.SetRoutes(routes, uploadedCerts(certs, apps))
	return nil
}

func route(a store.App, defaultDomain string, cs []rtm.Instance, leaving map[string]bool) proxy.Route {
	rt := proxy.Route{App: a.Name, Hosts: a.Domains, TLS: a.Mode == store.ModeHTTPSLE || a.HTTPSEnforced, Stopped: !a.Enabled()}
	if !slices.Contains(rt.Hosts, defaultDomain) {
		// Stored before every app kept its default domain.
		rt.Hosts = append([]string{defaultDomain}, rt.Hosts...)
	}
	for _, c := range cs {
		if addr := upstream(c); addr != "" && !leaving[c.Name] {
			rt.Upstreams = append(rt.Upstreams, addr)
		}
	}
	return rt
}

// upstream is where a running web container serves, "" for others.
func upstream(c rtm.Instance) string {
	if c.Status != rtm.StatusRunning || c.Labels[rtm.LabelProcess] != "web" || c.IP == "" {
		return ""
	}
	return net.JoinHostPort(c.IP, c.Labels[rtm.LabelPort])
}

// drainTimeout bounds how long replaced containers may finish requests.
const drainTimeout = 30 * time.Second

// retire takes containers out of the routes, lets their requests finish,
// then removes them.
func (r *reconciler) retire(ctx context.Context, cs []rtm.Instance) error {
	if len(cs) == 0 {
		return r.publishRoutes(ctx)
	}
	var addrs []string
	r.mu.Lock()
	for _, c := range cs {
		r.leaving[c.Name] = true
		if addr := upstream(c); addr != "" {
			addrs = append(addrs, addr)
		}
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		for _, c := range cs {
			delete(r.leaving, c.Name)
		}
		r.mu.Unlock()
	}()
	if err := r.publishRoutes(ctx); err != nil {
		return err
	}
	if r.p.router != nil && len(addrs) > 0 {
		drainCtx, cancel := context.WithTimeout(ctx, drainTimeout)
		err := r.waiting(func() error { return r.p.router.WaitDrained(drainCtx, addrs) })
		cancel()
		if err != nil {
			r.p.log.Warn("requests still running on replaced containers", "err", err)
		}
	}
	if err := r.removeAll(ctx, cs); err != nil {
		return err
	}
	return r.publishRoutes(ctx)
}
