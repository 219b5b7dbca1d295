package platform

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthPollInterval is short so a deploy switches as soon as the new
// container answers.
const healthPollInterval = 50 * time.Millisecond

// WaitHealthy polls addr until it is healthy or ctx is done. Healthy means
// a TCP connect succeeds when httpPath is empty, or a GET of httpPath
// answers 2xx or 3xx.
func WaitHealthy(ctx context.Context, addr string, httpPath string) error {
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		// A health check must not follow the app to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	var dialer net.Dialer
	ticker := time.NewTicker(healthPollInterval)
	defer ticker.Stop()
	var last error
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var err error
		if httpPath == "" {
			err = checkTCP(attemptCtx, &dialer, addr)
		} else {
			err = checkHTTP(attemptCtx, client, addr, httpPath)
		}
		cancel()
		if err == nil {
			return nil
		}
		// An attempt cut short by the deadline says less than the one before.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return last // what the app did, rather than that time ran out
		case <-ticker.C:
		}
	}
}

func checkTCP(ctx context.Context, d *net.Dialer, addr string) error {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func checkHTTP(ctx context.Context, client *http.Client, addr, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	// As Kubernetes' probes: a redirect is an answer, an error page is not.
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s answered %s", path, resp.Status)
	}
	return nil
}
