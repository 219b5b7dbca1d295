package initproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// serveStatic serves dir on port until stop is closed, then drains.
func serveStatic(dir, port string, stop <-chan struct{}) error {
	if port == "" {
		return errors.New("serve static: PORT is not set")
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return fmt.Errorf("serve static: %w", err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-stop
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	fmt.Fprintf(os.Stderr, "serving %s on :%s\n", dir, port)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve static: %w", err)
	}
	// Serve returns as soon as shutting down starts: let the requests in
	// flight finish.
	<-drained
	return nil
}

// ownStaticServer says whether argv runs this binary's static file server
// (the `static` runtime's command), which init then runs in its own
// process: one Go process per static app instead of two, about 4 MB less.
func ownStaticServer(argv []string) (dir string, ok bool) {
	if len(argv) != 4 || argv[1] != "init" || argv[2] != "--serve-static" {
		return "", false
	}
	self, err := os.Stat("/proc/self/exe")
	if err != nil {
		return "", false
	}
	named, err := os.Stat(argv[0])
	if err != nil || !os.SameFile(self, named) {
		return "", false
	}
	return argv[3], true
}
