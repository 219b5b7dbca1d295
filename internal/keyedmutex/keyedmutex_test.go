package keyedmutex

import (
	"sync/atomic"
	"testing"
)

func TestKeysTakeTurnsAlone(t *testing.T) {
	var m Map[int64]
	unlockA := m.Lock(1)
	// Another key is free while key 1 is held.
	unlockB := m.Lock(2)
	unlockB()
	var released atomic.Bool
	acquiredAfterRelease := make(chan bool)
	go func() {
		unlock := m.Lock(1)
		acquiredAfterRelease <- released.Load()
		unlock()
	}()
	released.Store(true)
	unlockA()
	if !<-acquiredAfterRelease {
		t.Fatal("key 1 was locked twice at once")
	}
}
