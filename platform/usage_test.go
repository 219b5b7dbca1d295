package platform

import (
	"testing"
	"time"
)

func TestUsageSamples(t *testing.T) {
	s := newUsageSampler()
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	// Two containers; web-1 uses 30 s of CPU a minute (50%), web-2 restarts
	// (its counter goes back), which counts as nothing.
	s.add(1, t0, 100<<20, map[string]uint64{"web-1": 10e9, "web-2": 50e9})
	s.add(1, t0.Add(time.Minute), 200<<20, map[string]uint64{"web-1": 40e9, "web-2": 1e9})
	hour, day := s.series(1)
	if len(hour) != 2 || hour[0].CPUPercent != 0 || hour[1].CPUPercent != 50 || hour[1].MemoryMB != 200 {
		t.Fatalf("hour: %+v", hour)
	}
	if len(day) != 1 || day[0].MemoryMB != 150 || day[0].CPUPercent != 25 || !day[0].At.Equal(t0) {
		t.Fatalf("day: %+v", day)
	}
	for i := 2; i < 100; i++ {
		s.add(1, t0.Add(time.Duration(i)*time.Minute), 300<<20, map[string]uint64{"web-1": 40e9})
	}
	hour, day = s.series(1)
	if len(hour) != hourSamples || !hour[len(hour)-1].At.Equal(t0.Add(99*time.Minute)) {
		t.Fatalf("hour keeps %d samples, last %v", len(hour), hour[len(hour)-1].At)
	}
	// 10:00 to 11:39 is 7 steps of 15 minutes.
	if len(day) != 7 || !day[6].At.Equal(t0.Add(90*time.Minute)) || day[6].MemoryMB != 300 {
		t.Fatalf("day: %d steps, last %+v", len(day), day[len(day)-1])
	}
	s.keep(map[int64]bool{2: true})
	if hour, _ := s.series(1); hour != nil {
		t.Fatal("a deleted app's samples are kept")
	}
}
