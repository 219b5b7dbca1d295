// Package keyedmutex is a set of mutexes, one per key, made on first use:
// the work on one app takes turns, the work on different apps does not.
package keyedmutex

import "sync"

// Map holds a mutex per key; its zero value is ready to use.
type Map[K comparable] struct {
	mu    sync.Mutex
	byKey map[K]*sync.Mutex
}

// Lock locks key's mutex and returns its unlock.
func (m *Map[K]) Lock(key K) (unlock func()) {
	m.mu.Lock()
	if m.byKey == nil {
		m.byKey = map[K]*sync.Mutex{}
	}
	l, ok := m.byKey[key]
	if !ok {
		l = &sync.Mutex{}
		m.byKey[key] = l
	}
	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}
