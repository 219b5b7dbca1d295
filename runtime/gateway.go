package runtime

import (
	"context"
	"net"
)

// Gateway is the host's address on group's bridge: where the group's
// containers reach services of the host, such as its database servers. A
// group without a network yet gets its /24 now, so the address stays the
// same once its first container starts.
func (d *Driver) Gateway(ctx context.Context, group string) (string, error) {
	if _, err := d.conn(ctx); err != nil {
		return "", err
	}
	gn, err := d.nets.forGroup(group)
	if err != nil {
		return "", err
	}
	// host-local gives the bridge the first address of the range.
	gw := make(net.IP, 4)
	copy(gw, gn.subnet.IP.To4())
	gw[3] = 1
	return gw.String(), nil
}
