package firewall

import (
	"syscall"
)

// soReusePort is SO_REUSEPORT on Linux.
const soReusePort = 0xf

// reusePort lets several UDP sockets bind the same address; the kernel
// spreads datagrams over them by sender.
func reusePort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
