package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// spool keeps batches that could not be written to ClickHouse on disk, one
// file per batch under DIR/TABLE/, bounded in total bytes. When a new batch
// does not fit, the oldest batches (of any table) are dropped and counted.
// The spool survives restarts: entries found at start are replayed.
//
// File names carry everything the replayer needs without reading the file:
// SEQ-BATCHID-ROWS-STATE.gob, with STATE "n" (never sent) or "a" (an insert
// was attempted and may have landed: check ingest_batch before replaying).
type spool struct {
	dir      string
	maxBytes int64
	onDrop   func(table string, rows int) // called with mu held

	mu      sync.Mutex
	seq     uint64
	total   int64
	entries map[string][]*spoolEntry // per table, oldest first
}

type spoolEntry struct {
	table     string
	seq       uint64
	batchID   uint64
	rows      int
	size      int64
	attempted bool
	inFlight  bool
	path      string
}

func openSpool(dir string, maxBytes int64, tables []string, onDrop func(string, int)) (*spool, error) {
	s := &spool{dir: dir, maxBytes: maxBytes, onDrop: onDrop, entries: map[string][]*spoolEntry{}}
	for _, t := range tables {
		td := filepath.Join(dir, t)
		if err := os.MkdirAll(td, 0o750); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		des, err := os.ReadDir(td)
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		for _, de := range des {
			name := de.Name()
			if strings.HasSuffix(name, ".tmp") {
				_ = os.Remove(filepath.Join(td, name)) // interrupted write
				continue
			}
			e, ok := parseSpoolName(t, name)
			if !ok {
				continue
			}
			info, err := de.Info()
			if err != nil {
				continue
			}
			e.size = info.Size()
			e.path = filepath.Join(td, name)
			s.entries[t] = append(s.entries[t], e)
			s.total += e.size
			s.seq = max(s.seq, e.seq)
		}
		sort.Slice(s.entries[t], func(i, j int) bool { return s.entries[t][i].seq < s.entries[t][j].seq })
	}
	return s, nil
}

func spoolName(e *spoolEntry) string {
	st := "n"
	if e.attempted {
		st = "a"
	}
	return fmt.Sprintf("%016x-%016x-%d-%s.gob", e.seq, e.batchID, e.rows, st)
}

func parseSpoolName(table, name string) (*spoolEntry, bool) {
	base, ok := strings.CutSuffix(name, ".gob")
	if !ok {
		return nil, false
	}
	f := strings.Split(base, "-")
	if len(f) != 4 {
		return nil, false
	}
	seq, err1 := strconv.ParseUint(f[0], 16, 64)
	id, err2 := strconv.ParseUint(f[1], 16, 64)
	rows, err3 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || err3 != nil || (f[3] != "a" && f[3] != "n") {
		return nil, false
	}
	return &spoolEntry{table: table, seq: seq, batchID: id, rows: rows, attempted: f[3] == "a"}, true
}

// put stores a batch. It returns false when the batch alone exceeds the
// spool's size (the caller counts it dropped).
func (s *spool) put(table string, batchID uint64, rows int, attempted bool, data []byte) (bool, error) {
	size := int64(len(data))
	s.mu.Lock()
	defer s.mu.Unlock()
	if size > s.maxBytes {
		return false, nil
	}
	for s.total+size > s.maxBytes {
		if !s.evictOldestLocked() {
			return false, nil
		}
	}
	s.seq++
	e := &spoolEntry{table: table, seq: s.seq, batchID: batchID, rows: rows, size: size, attempted: attempted}
	e.path = filepath.Join(s.dir, table, spoolName(e))
	tmp := e.path + ".tmp"
	if err := writeFileSync(tmp, data); err != nil {
		return false, fmt.Errorf("spool write: %w", err)
	}
	if err := os.Rename(tmp, e.path); err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("spool write: %w", err)
	}
	s.entries[table] = append(s.entries[table], e)
	s.total += size
	return true, nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// evictOldestLocked drops the oldest entry not being replayed right now.
func (s *spool) evictOldestLocked() bool {
	var victim *spoolEntry
	for _, es := range s.entries {
		for _, e := range es {
			if e.inFlight {
				continue
			}
			if victim == nil || e.seq < victim.seq {
				victim = e
			}
			break
		}
	}
	if victim == nil {
		return false
	}
	s.removeLocked(victim)
	if s.onDrop != nil {
		s.onDrop(victim.table, victim.rows)
	}
	return true
}

func (s *spool) removeLocked(e *spoolEntry) {
	es := s.entries[e.table]
	for i, x := range es {
		if x == e {
			s.entries[e.table] = append(es[:i:i], es[i+1:]...)
			s.total -= e.size
			_ = os.Remove(e.path)
			return
		}
	}
}

// len returns the number of batches spooled for table.
func (s *spool) len(table string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries[table])
}

// head returns the oldest entry of table, marked in flight, with its data.
func (s *spool) head(table string) (*spoolEntry, []byte, error) {
	s.mu.Lock()
	es := s.entries[table]
	if len(es) == 0 {
		s.mu.Unlock()
		return nil, nil, nil
	}
	e := es[0]
	e.inFlight = true
	s.mu.Unlock()
	data, err := os.ReadFile(e.path)
	return e, data, err
}

// done removes an entry after it was written (or found corrupt).
func (s *spool) done(e *spoolEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(e)
}

// markAttempted records on disk, before a replay sends the batch, that it
// may reach the server: after a crash the replay checks ingest_batch first.
func (s *spool) markAttempted(e *spoolEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.attempted {
		return nil
	}
	e.attempted = true
	np := filepath.Join(s.dir, e.table, spoolName(e))
	if err := os.Rename(e.path, np); err != nil {
		e.attempted = false
		return fmt.Errorf("spool: %w", err)
	}
	e.path = np
	return nil
}

// release returns an entry to the spool after a failed replay.
func (s *spool) release(e *spoolEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.inFlight = false
}

// stats returns the total bytes and batches spooled.
func (s *spool) stats() (bytes int64, batches int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, es := range s.entries {
		batches += len(es)
	}
	return s.total, batches
}
