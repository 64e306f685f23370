package firewall

import (
	"bufio"
	"errors"
	"io"
)

// errBadFrame: an octet-counted frame whose length cannot be read; the
// stream cannot be resynchronised and the connection is closed.
var errBadFrame = errors.New("syslog: unreadable octet count")

const (
	framingUnknown = iota
	framingOctet   // RFC 6587 3.4.1 / RFC 5425: "LEN SP MSG"
	framingNewline // RFC 6587 3.4.2: MSG LF
)

// frameReader splits a syslog TCP stream into messages. The framing is
// detected from the connection's first byte: a digit means octet counting,
// anything else (normally '<') newline framing.
type frameReader struct {
	r    *bufio.Reader
	max  int
	mode int
}

func newFrameReader(r io.Reader, max int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, max+16), max: max}
}

// next returns the next frame, valid until the following call. A frame that
// is skipped is reported with a reason (too_long, empty) and a nil frame; err
// is io.EOF at the end of the stream, errBadFrame when octet framing is lost,
// or the read error.
func (f *frameReader) next() (frame []byte, reason string, err error) {
	if f.mode == framingUnknown {
		b, err := f.r.Peek(1)
		if err != nil {
			return nil, "", err
		}
		f.mode = framingNewline
		if b[0] >= '1' && b[0] <= '9' {
			f.mode = framingOctet
		}
	}
	if f.mode == framingOctet {
		return f.nextOctet()
	}
	return f.nextLine()
}

func (f *frameReader) nextOctet() ([]byte, string, error) {
	n := 0
	for digits := 0; ; digits++ {
		c, err := f.r.ReadByte()
		if err != nil {
			if err == io.EOF && digits > 0 {
				return nil, "", io.ErrUnexpectedEOF
			}
			return nil, "", err
		}
		if c == ' ' && digits > 0 {
			break
		}
		// Tolerate a stray newline between frames (some senders add one).
		if (c == '\n' || c == '\r') && digits == 0 {
			digits--
			continue
		}
		if c < '0' || c > '9' || digits >= 9 || (digits == 0 && c == '0') {
			return nil, "", errBadFrame
		}
		n = n*10 + int(c-'0')
	}
	if n > f.max {
		if _, err := f.r.Discard(n); err != nil {
			return nil, "", err
		}
		return nil, ReasonTooLong, nil
	}
	b, err := f.r.Peek(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, "", err
	}
	_, _ = f.r.Discard(n)
	b = trimEOL(b)
	if len(b) == 0 {
		return nil, ReasonEmpty, nil
	}
	return b, "", nil
}

func (f *frameReader) nextLine() ([]byte, string, error) {
	b, err := f.r.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		// Longer than max: skip to the end of the line.
		for err == bufio.ErrBufferFull {
			_, err = f.r.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, "", err
		}
		return nil, ReasonTooLong, nil
	case err == io.EOF && len(b) > 0:
		// A last line without its newline: keep it.
	case err != nil:
		return nil, "", err
	}
	if len(b) > f.max+1 || (len(b) > f.max && b[len(b)-1] != '\n') {
		return nil, ReasonTooLong, nil
	}
	b = trimEOL(b)
	if len(b) == 0 {
		return nil, ReasonEmpty, nil
	}
	return b, "", nil
}

// buffered reports whether more bytes are ready without blocking.
func (f *frameReader) buffered() bool { return f.r.Buffered() > 0 }

// trimEOL drops trailing CR, LF and NUL (some senders end with NUL).
func trimEOL(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\n', '\r', 0:
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}
