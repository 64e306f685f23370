package flow

import "strconv"

var protoNames = map[uint8]string{
	1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre",
	50: "esp", 51: "ah", 58: "ipv6-icmp", 89: "ospf", 103: "pim", 112: "vrrp",
	115: "l2tp", 132: "sctp", 137: "mpls-in-ip",
}

// ProtocolName returns the IANA keyword of an IP protocol number (lower
// case), or the number itself when it has no well-known name. The API and
// the dashboard render the proto column of flows and rollups with it.
func ProtocolName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

// ProtocolNumber is the inverse of ProtocolName (for API filters).
func ProtocolNumber(name string) (uint8, bool) {
	for k, v := range protoNames {
		if v == name {
			return k, true
		}
	}
	n, err := strconv.ParseUint(name, 10, 8)
	return uint8(n), err == nil
}
