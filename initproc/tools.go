package initproc

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Environment variables the platform sets in every app container.
const (
	EnvApp  = "ROSTI_APP"  // the app's name; its presence says "inside an app container"
	EnvTech = "ROSTI_TECH" // the tech of the app's runtime ("binary", "node", ...)
)

// Tool returns the container command that argv0 (the base name the binary
// was started as) names: supervisorctl or crontab. The runtime mounts the
// rosti binary read-only under these names in /usr/local/bin of every
// container, so they work in any image, pulled ones included, and no app
// can replace them.
func Tool(argv0 string) (func(args []string) int, bool) {
	switch argv0 {
	case "supervisorctl":
		return func(args []string) int { return Supervisorctl(args, os.Stdout, os.Stderr) }, true
	case "crontab":
		return func(args []string) int { return Crontab(DefaultCrontab, args, os.Stdin, os.Stdout, os.Stderr) }, true
	}
	return nil, false
}

// Tech is `rosti [TECH]` inside an app container, which Rosti's client runs
// after creating an app: it confirms that the app's runtime provides TECH
// (any runtime does when TECH is empty), or explains how to pick another
// runtime, since a container cannot change its own image.
func Tech(args []string, stdout, stderr io.Writer) int {
	have := os.Getenv(EnvTech)
	want := ""
	if len(args) > 0 {
		want = strings.ToLower(strings.TrimSpace(args[0]))
	}
	switch {
	case want == "" && have != "":
		fmt.Fprintf(stdout, "This app runs the %s runtime.\n", have)
		return 0
	case want == "":
		fmt.Fprintln(stdout, "This app runs an image that is not one of the server's runtimes.")
		return 0
	case want == have:
		fmt.Fprintf(stdout, "This app runs the %s runtime: %s is ready.\n", have, want)
		return 0
	}
	running := "an image that is not one of the server's runtimes"
	if have != "" {
		running = "the " + have + " runtime"
	}
	fmt.Fprintf(stderr, `This app runs %s, which does not provide %s.
A container cannot change its own runtime: the runtime is the app's image,
chosen through the API. List the runtimes and their techs, then set the
app's image to the one that provides %s:

  GET   /api/v1/<company_id>/runtimes/
  PATCH /api/v1/<company_id>/apps/<app_id>/   {"image": "<that runtime's image>"}

With rostictl, put that image in the Rostifile's "runtime:" and run
"rostictl up" again.
`, running, want, want)
	return 1
}
