package embedded

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePortsAvoidTheKernelsOutgoingRange: the picked ports are distinct,
// free, and below the range the kernel hands to outgoing connections, so none
// is taken by a connection between the pick and the server's bind.
func TestFreePortsAvoidTheKernelsOutgoingRange(t *testing.T) {
	below := ephemeralPortsStart()
	if below == 0 {
		t.Skip("no /proc/sys/net/ipv4/ip_local_port_range here")
	}
	ports, err := freePorts(4, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p < minPickedPort || p >= below {
			t.Fatalf("ports %v: want 4 distinct ones in [%d, %d)", ports, minPickedPort, below)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		_ = l.Close()
	}
}
