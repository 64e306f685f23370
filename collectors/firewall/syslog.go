package firewall

import (
	"strings"
	"time"
)

// Syslog header flavours.
const (
	syslogNone = iota // no recognisable header: the whole line is the message
	syslog3164
	syslog5424
)

// header is a parsed syslog header. Every string is a substring of the line.
type header struct {
	Kind int
	Pri  int // -1 when absent
	Time time.Time
	Host string
	App  string
	Msg  string
}

// parseHeader splits an RFC 5424 or RFC 3164 line into header and message.
// It never fails: what it cannot read stays in Msg. now gives the year of
// RFC 3164 timestamps (and the zone: UTC). ok is false when the line had no
// valid PRI or no timestamp, which callers count as a malformed header.
func parseHeader(line string, now time.Time) (h header, ok bool) {
	h.Pri = -1
	h.Msg = line
	s := line
	if len(s) > 2 && s[0] == '<' {
		end := strings.IndexByte(s[:min(len(s), 5)], '>')
		if end > 1 {
			if n, good := atou(s[1:end], 191); good {
				h.Pri = int(n)
				s = s[end+1:]
			}
		}
	}
	h.Msg = s
	// RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
	if len(s) > 2 && s[0] >= '1' && s[0] <= '9' && s[1] == ' ' {
		if parse5424(s[2:], &h) {
			return h, h.Pri >= 0
		}
		h.Msg = s
	}
	if parse3164(s, now, &h) {
		return h, h.Pri >= 0
	}
	h.Kind = syslogNone
	h.Msg = s
	return h, false
}

func parse5424(s string, h *header) bool {
	ts, s := nextTok(s)
	host, s := nextTok(s)
	app, s := nextTok(s)
	_, s = nextTok(s) // procid
	_, s = nextTok(s) // msgid
	if ts == "" || host == "" || app == "" || s == "" {
		return false
	}
	var t time.Time
	if ts != "-" {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return false
		}
		t = t.UTC()
	}
	// STRUCTURED-DATA: "-" or one or more [id k="v" ...] with \" \] \\ escapes.
	if s[0] == '-' {
		s = s[1:]
	} else if s[0] == '[' {
		for len(s) > 0 && s[0] == '[' {
			i, inQuote := 1, false
			for ; i < len(s); i++ {
				c := s[i]
				if c == '\\' && inQuote {
					i++
					continue
				}
				if c == '"' {
					inQuote = !inQuote
				} else if c == ']' && !inQuote {
					break
				}
			}
			if i >= len(s) {
				return false
			}
			s = s[i+1:]
		}
	} else {
		return false
	}
	if len(s) > 0 {
		if s[0] != ' ' {
			return false
		}
		s = s[1:]
	}
	s = strings.TrimPrefix(s, "\uFEFF")
	h.Kind = syslog5424
	h.Time = t
	if host != "-" {
		h.Host = host
	}
	if app != "-" {
		h.App = app
	}
	h.Msg = s
	return true
}

// nextTok returns the text before the next single space and the rest.
func nextTok(s string) (tok, rest string) {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parse3164 reads "Mmm dd hh:mm:ss[.fff] [yyyy] " or an RFC 3339 timestamp,
// then an optional hostname and tag.
func parse3164(s string, now time.Time, h *header) bool {
	var t time.Time
	rest := ""
	switch {
	case len(s) >= 15 && s[3] == ' ' && s[6] == ' ' && s[9] == ':' && s[12] == ':':
		mon := 0
		for i, m := range months {
			if s[:3] == m {
				mon = i + 1
				break
			}
		}
		day, ok1 := atou(strings.TrimLeft(s[4:6], " "), 31)
		hh, ok2 := atou(s[7:9], 23)
		mm, ok3 := atou(s[10:12], 59)
		ss, ok4 := atou(s[13:15], 60)
		if mon == 0 || !ok1 || !ok2 || !ok3 || !ok4 || day == 0 {
			return false
		}
		rest = s[15:]
		nsec := 0
		if len(rest) > 1 && rest[0] == '.' {
			j := 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			frac := rest[1:j]
			if len(frac) > 9 {
				frac = frac[:9]
			}
			if f, ok := atou(frac, 999999999); ok {
				nsec = int(f)
				for k := len(frac); k < 9; k++ {
					nsec *= 10
				}
			}
			rest = rest[j:]
		}
		year := now.Year()
		t = time.Date(year, time.Month(mon), int(day), int(hh), int(mm), int(ss), nsec, time.UTC)
		if t.Sub(now) > 48*time.Hour { // December line received in January
			t = t.AddDate(-1, 0, 0)
		}
	case len(s) >= 20 && s[3] == ' ' && s[6] == ' ' && s[11] == ' ' && s[14] == ':' && s[17] == ':':
		// "Mmm dd yyyy hh:mm:ss" (Cisco ASA with "logging timestamp").
		mon := 0
		for i, m := range months {
			if s[:3] == m {
				mon = i + 1
				break
			}
		}
		day, ok1 := atou(strings.TrimLeft(s[4:6], " "), 31)
		year, ok5 := atou(s[7:11], 9999)
		hh, ok2 := atou(s[12:14], 23)
		mm, ok3 := atou(s[15:17], 59)
		ss, ok4 := atou(s[18:20], 60)
		if mon == 0 || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || day == 0 {
			return false
		}
		t = time.Date(int(year), time.Month(mon), int(day), int(hh), int(mm), int(ss), 0, time.UTC)
		rest = s[20:]
		rest = strings.TrimPrefix(rest, ":") // "Jan 15 2024 10:00:00: %ASA-…"
	case len(s) >= 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T':
		ts, r := nextTok(s)
		tt, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return false
		}
		t, rest = tt.UTC(), " "+r
	default:
		return false
	}
	if len(rest) > 0 && rest[0] != ' ' {
		return false
	}
	h.Kind = syslog3164
	h.Time = t
	rest = strings.TrimLeft(rest, " ")
	// Optional HOSTNAME: absent when the next token is a tag ("kernel:") or
	// the message itself ("%ASA-…").
	tok, after := nextTok(rest)
	if tok != "" && !strings.HasSuffix(tok, ":") && tok[0] != '%' && !strings.ContainsAny(tok, "=[,") {
		h.Host = tok
		rest = after
	}
	// Optional TAG: "app:" or "app[pid]:"; ASA writes " : %ASA…".
	tok, after = nextTok(rest)
	switch {
	case tok == ":":
		rest = after
	case len(tok) > 1 && strings.HasSuffix(tok, ":") && !strings.Contains(tok, "="):
		app := tok[:len(tok)-1]
		if i := strings.IndexByte(app, '['); i > 0 {
			app = app[:i]
		}
		if app[0] != '%' {
			h.App = app
			rest = after
		}
	}
	h.Msg = rest
	return true
}
