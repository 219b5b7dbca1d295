package store

import (
	"bytes"
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

func decodeInto(raw []byte, v any) bool { return json.Unmarshal(raw, v) == nil }

// deleteWhere removes every key of b for which match is true. Keys are
// collected first because bbolt cursors must not delete while iterating.
func deleteWhere(b *bolt.Bucket, match func(k, v []byte) bool) error {
	var doomed [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		if match(k, v) {
			doomed = append(doomed, append([]byte(nil), k...))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	return deleteWhere(b, func(k, _ []byte) bool { return bytes.HasPrefix(k, prefix) })
}

// idsWithPrefix returns the second id of every pair key starting with prefix.
func idsWithPrefix(b *bolt.Bucket, prefix []byte) []int64 {
	var ids []int64
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, btoi(k[len(prefix):]))
	}
	return ids
}
