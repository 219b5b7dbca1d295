package store

import bolt "go.etcd.io/bbolt"

// Settings are the server-wide choices an administrator makes at run time
// (flags are the operator's at start).
type Settings struct {
	// RequireTwoFactor makes every user turn on two-factor sign-in before
	// using the web UI.
	RequireTwoFactor bool `json:"require_two_factor"`
}

var keySettings = []byte("settings")

// Settings returns the settings; a new server has the zero value.
func (s *Store) Settings() (Settings, error) {
	var out Settings
	err := s.view(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketSettings).Get(keySettings)
		if raw == nil {
			return nil
		}
		return getJSONValue(raw, &out, "settings")
	})
	return out, err
}

// PutSettings stores the settings.
func (s *Store) PutSettings(v Settings) error {
	return s.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketSettings), keySettings, v)
	})
}
