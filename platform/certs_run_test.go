package platform

import (
	"fmt"
	"testing"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

func TestUploadedCertsServeOnlyTheirCompanysDomains(t *testing.T) {
	apps := []store.App{
		{CompanyID: 1, Domains: []string{"a.apps.test", "www.a.test"}},
		{CompanyID: 2, Domains: []string{"b.apps.test", "www.b.test"}},
	}
	tests := []struct {
		name    string
		cert    store.Cert
		servers string // the hosts the proxy gets, "" for no cert at all
	}{
		{"attached to its own app's domain", store.Cert{CompanyID: 1, Domains: []string{"www.a.test"}}, "[www.a.test]"},
		{"not attached anywhere", store.Cert{CompanyID: 1, Domains: []string{}}, ""},
		{"a domain that moved to another company", store.Cert{CompanyID: 1, Domains: []string{"www.b.test"}}, ""},
		{"a domain no app holds any more", store.Cert{CompanyID: 1, Domains: []string{"gone.test", "www.a.test"}}, "[www.a.test]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := uploadedCerts([]store.Cert{tc.cert}, apps)
			hosts := ""
			if len(got) == 1 {
				hosts = fmt.Sprint(got[0].Hosts)
			}
			if len(got) > 1 || hosts != tc.servers {
				t.Fatalf("got %v, want hosts %q", got, tc.servers)
			}
		})
	}
}

func TestLeftoverOneOffs(t *testing.T) {
	now := time.Now()
	oneOff := map[string]string{labelOneOff: "1"}
	tests := []struct {
		name string
		c    rtm.Instance
		left bool
	}{
		{"a web container", rtm.Instance{Status: rtm.StatusStopped, ExitedAt: now.Add(-time.Hour)}, false},
		{"running, within the timeout", rtm.Instance{Labels: oneOff, Status: rtm.StatusRunning, StartedAt: now.Add(-time.Minute)}, false},
		{"running far past the timeout", rtm.Instance{Labels: oneOff, Status: rtm.StatusRunning, StartedAt: now.Add(-runTimeout - 2*oneOffGrace)}, true},
		{"just ended: its Run reads the output", rtm.Instance{Labels: oneOff, Status: rtm.StatusStopped, ExitedAt: now.Add(-time.Second)}, false},
		{"ended long ago", rtm.Instance{Labels: oneOff, Status: rtm.StatusStopped, ExitedAt: now.Add(-2 * oneOffGrace)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(leftoverOneOffs([]rtm.Instance{tc.c}, now)) == 1; got != tc.left {
				t.Fatalf("left over: %v, want %v", got, tc.left)
			}
		})
	}
}
