package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// debianPython is Debian's interpreter, which has python3-coreapi; another
// python3 on the PATH (pyenv, a venv) may not.
const debianPython = "/usr/bin/python3"

// TestCoreAPIClient: Rosti's documented client, python3-coreapi, reads the
// schema at /api/schema/ and lists companies, creates, reads, updates,
// restarts and deletes an app through its links.
func TestCoreAPIClient(t *testing.T) {
	if out, err := exec.Command(debianPython, "-c", "import coreapi").CombinedOutput(); err != nil {
		t.Skipf("needs python3-coreapi (scripts/deps.sh test): %v %s", err, out)
	}
	in := startRosti(t, rostiBin(t), filepath.Join(t.TempDir(), "data"))
	admin := in.adminUser(t)
	cmd := exec.Command(debianPython, "testdata/coreapi_client.py", in.apiURL, admin.token, "static")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("coreapi client: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client output: %v: %s", err, out)
	}
	want := map[string]any{
		"companies": []any{"admin"},
		"created":   "viacoreapi", "read": "viacoreapi", "restarted": "viacoreapi",
		"app_port": 3000.0,
		"refused": map[string]any{
			"message": "validation error",
			"errors":  map[string]any{"action": []any{"must be start, stop, restart or rebuild"}},
		},
		"apps_left": []any{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("coreapi saw\n%v\nwant\n%v", got, want)
	}
}
