package platform

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestCleanDomains(t *testing.T) {
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("d%d.example.com", i)
	}
	tests := []struct {
		name      string
		wildcards bool
		domains   []string
		want      []string // the clean list, when no problem is expected
		problem   string   // part of the one problem expected
	}{
		{name: "empty is the default domain", want: []string{"blog.apps.test"}},
		{name: "own names, normalized, the default first", domains: []string{" Blog.Example.COM. ", "blog.example.com", "blog.apps.test"}, want: []string{"blog.apps.test", "blog.example.com"}},
		{name: "IPv4 literal", domains: []string{"127.0.0.1"}, problem: "is an IP address"},
		{name: "server's address", domains: []string{"203.0.113.7"}, problem: "is an IP address"},
		{name: "short IPv4 form", domains: []string{"127.1"}, problem: "is an IP address"},
		{name: "IPv6 literal", domains: []string{"[::1]"}, problem: "is an IP address"},
		{name: "the apps domain itself", domains: []string{"apps.test"}, problem: "under apps.test"},
		{name: "another app's default name", domains: []string{"shop.apps.test"}, problem: "only blog.apps.test belongs"},
		{name: "wildcard over the apps domain", wildcards: true, domains: []string{"*.apps.test"}, problem: "under apps.test"},
		{name: "the panel domain", domains: []string{"panel.example.org"}, problem: "panel domain"},
		{name: "under the panel domain", domains: []string{"x.panel.example.org"}, problem: "panel domain"},
		{name: "wildcard not allowed", domains: []string{"*.example.com"}, problem: "does not allow wildcard"},
		{name: "wildcard allowed by the operator", wildcards: true, domains: []string{"*.example.com"}, want: []string{"blog.apps.test", "*.example.com"}},
		{name: "not a host name", domains: []string{"exa mple.com"}, problem: "not a valid host name"},
		{name: "at most 100, the default among them", domains: many[:100], problem: "at most 100"},
		{name: "99 and the default are fine", domains: many[:99], want: append([]string{"blog.apps.test"}, many[:99]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Platform{cfg: Config{AppsDomain: "apps.test", PanelDomain: "panel.example.org", WildcardDomains: tt.wildcards}}
			clean, problems := p.cleanDomains("blog", tt.domains)
			if tt.problem == "" {
				if len(problems) != 0 || !slices.Equal(clean, tt.want) {
					t.Fatalf("got %v, problems %v; want %v", clean, problems, tt.want)
				}
				return
			}
			if len(problems) != 1 || !strings.Contains(problems[0], tt.problem) {
				t.Fatalf("problems %v; want one saying %q", problems, tt.problem)
			}
		})
	}
}
