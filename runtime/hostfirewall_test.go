package runtime_test

import (
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/runtime/rttest"
)

const metadataAddr = "169.254.169.254:80"

// metadataListener listens on 169.254.169.254:80 in a network namespace
// the test makes, reached from the host through a veth pair with a /32
// route, as a cloud's metadata service is, without any traffic leaving
// the machine.
func metadataListener(t *testing.T) {
	t.Helper()
	suffix := strconv.Itoa(os.Getpid() % 100000)
	ns, host, peer := "rmeta"+suffix, "rmh"+suffix, "rmn"+suffix
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", host).Run()
		_ = exec.Command("ip", "netns", "del", ns).Run()
	})
	run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	run("ip", "link", "set", peer, "netns", ns)
	run("ip", "addr", "add", "169.254.77.1", "peer", "169.254.169.254", "dev", host)
	run("ip", "link", "set", host, "up")
	run("ip", "netns", "exec", ns, "ip", "addr", "add", "169.254.169.254", "peer", "169.254.77.1", "dev", peer)
	run("ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")

	// A socket belongs to the namespace of the thread that made it.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is thrown away
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		ln, err := net.Listen("tcp", metadataAddr)
		if err == nil {
			t.Cleanup(func() { ln.Close() })
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func listenHost(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln, port
}

// outwardAddress is the host's address on its default route, "" without
// one. A UDP "connection" only picks a route; nothing is sent.
func outwardAddress() string {
	c, err := net.Dial("udp", "203.0.113.1:9")
	if err != nil {
		return ""
	}
	defer c.Close()
	host, _, _ := net.SplitHostPort(c.LocalAddr().String())
	return host
}

func gatewayOf(ip string) string {
	parts := strings.Split(ip, ".")
	return strings.Join(append(parts[:3], "1"), ".")
}

// TestContainersCannotReachTheHost: a container reaches the host only on
// the ports rosti serves to apps, through its own gateway or the host's
// outward address; other host ports, another company's gateway and the
// cloud metadata address are closed to it.
func TestContainersCannotReachTheHost(t *testing.T) {
	_, served := listenHost(t)
	_, private := listenHost(t)
	servedPort, _ := strconv.Atoi(served)
	env := rttest.StartWith(t, func(c *rtm.Config) { c.HostPorts = []int{servedPort} })
	d := env.Driver
	metadataListener(t)
	image := rttest.HTTPServerImage(t, d)
	a, err := d.Run(t.Context(), httpSpec(t, "fwa-web-1", image, "company-a", 10021))
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Run(t.Context(), httpSpec(t, "fwb-web-1", image, "company-b", 10022))
	if err != nil {
		t.Fatal(err)
	}
	get(t, b.IP, "/")
	own, other := gatewayOf(a.IP), gatewayOf(b.IP)
	type reach struct {
		name   string
		addr   string
		wantOK bool
	}
	tests := []reach{
		{"own gateway, a port rosti serves", net.JoinHostPort(own, served), true},
		{"own gateway, another host port", net.JoinHostPort(own, private), false},
		{"another company's gateway, a port rosti serves", net.JoinHostPort(other, served), false},
		{"another company's gateway, another host port", net.JoinHostPort(other, private), false},
		{"cloud metadata", metadataAddr, false},
	}
	if out := outwardAddress(); out != "" {
		tests = append(tests,
			reach{"host's outward address, a port rosti serves", net.JoinHostPort(out, served), true},
			reach{"host's outward address, another host port", net.JoinHostPort(out, private), false})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Something answers there, for the host itself.
			c, err := net.Dial("tcp", tt.addr)
			if err != nil {
				t.Fatalf("the host cannot reach %s itself: %v", tt.addr, err)
			}
			c.Close()
			got := get(t, a.IP, "/dial?addr="+tt.addr)
			if (got == "ok") != tt.wantOK {
				t.Fatalf("container -> %s: %q, want reachable=%v", tt.addr, got, tt.wantOK)
			}
		})
	}
}
