package probes

import (
	"context"
	"errors"
	"net"
)

// Responder is a UDP echo reflector (`meridian-agent responder`): it returns
// every datagram unchanged to its sender.
type Responder struct {
	conn net.PacketConn
}

// ListenResponder binds a UDP echo responder on addr.
func ListenResponder(addr string) (*Responder, error) {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	return &Responder{conn: c}, nil
}

// Addr is the bound address.
func (r *Responder) Addr() net.Addr { return r.conn.LocalAddr() }

// Serve echoes until ctx ends or Close is called.
func (r *Responder) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stop()
	buf := make([]byte, 65535)
	for {
		n, from, err := r.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		_, _ = r.conn.WriteTo(buf[:n], from)
	}
}

// Close stops Serve.
func (r *Responder) Close() error { return r.conn.Close() }
