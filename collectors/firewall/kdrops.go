package firewall

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"strconv"
	"syscall"
)

// socketInode returns the inode of a socket, the key of /proc/net/udp.
func socketInode(c *net.UDPConn) (uint64, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var st syscall.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil || serr != nil {
		return 0, false
	}
	return st.Ino, true
}

// kernelDrops sums the drops column of /proc/net/udp and /proc/net/udp6 for
// the given socket inodes: datagrams the kernel discarded because the
// socket's receive buffer was full.
func kernelDrops(inodes map[uint64]bool) float64 {
	var total uint64
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		total += parseUDPDrops(data, inodes)
	}
	return float64(total)
}

// parseUDPDrops reads the /proc/net/udp format:
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
func parseUDPDrops(data []byte, inodes map[uint64]bool) uint64 {
	var total uint64
	sc := bufio.NewScanner(bytes.NewReader(data))
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		f := bytes.Fields(sc.Bytes())
		if len(f) < 13 {
			continue
		}
		ino, err := strconv.ParseUint(string(f[9]), 10, 64)
		if err != nil || !inodes[ino] {
			continue
		}
		if d, err := strconv.ParseUint(string(f[12]), 10, 64); err == nil {
			total += d
		}
	}
	return total
}
