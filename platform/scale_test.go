package platform

import (
	"context"
	"testing"

	rtm "github.com/rosti-paas/rosti/runtime"
)

// TestScaleUpAndToZero: ten web containers start (several at once) and
// all of them run; scaling to zero removes them and answers no error.
func TestScaleUpAndToZero(t *testing.T) {
	p, _ := newRuntimePlatform(t, 0, nil)
	ctx := context.Background()
	u, company := newAlice(t, p)
	a := httpserverApp(t, p, u, company, "wide", "")
	runningWeb(t, p, a.ID)
	tests := []struct {
		name string
		web  int
	}{
		{"up to ten", 10},
		{"down to zero", 0},
		{"back to one", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.Scale(ctx, u, AppByID(a.CompanyID, a.ID), map[string]int{"web": tc.web}); err != nil {
				t.Fatalf("scale web=%d: %v", tc.web, err)
			}
			list, err := p.containersOf(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			running := 0
			for _, c := range list {
				if c.Status == rtm.StatusRunning {
					running++
				}
			}
			if running != tc.web || len(list) != tc.web {
				t.Fatalf("%d containers, %d running, want %d: %+v", len(list), running, tc.web, list)
			}
		})
	}
}
