package runtime

import (
	"fmt"
	"os"
)

// LogNames lists the containers that have logs, including containers that
// no longer exist, whose logs are kept until RemoveLogs.
func (d *Driver) LogNames() ([]string, error) {
	entries, err := os.ReadDir(d.logRoot())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
