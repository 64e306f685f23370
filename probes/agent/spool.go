package agent

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/meridian-obs/meridian/probes"
	"github.com/meridian-obs/meridian/probes/api"
)

// spool is a bounded on-disk FIFO of result batches. Every batch gets the
// id "<instance>:<seq>": instance is created once per spool directory, seq
// increases by one per batch and is persisted, so the server can tell a
// retried batch from a new one across agent restarts.
type spool struct {
	dir      string
	maxBytes int64

	mu       sync.Mutex
	instance string
	next     uint64
	items    []spoolItem
	total    int64
}

type spoolItem struct {
	seq     uint64
	results int
	size    int64
}

func (it spoolItem) name() string { return fmt.Sprintf("%020d-%d.batch", it.seq, it.results) }

func openSpool(dir string, maxBytes int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes, next: 1}
	inst, err := os.ReadFile(filepath.Join(dir, "instance"))
	if err == nil && len(bytes.TrimSpace(inst)) > 0 {
		s.instance = string(bytes.TrimSpace(inst))
	} else {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		s.instance = hex.EncodeToString(b)
		if err := writeFileAtomic(filepath.Join(dir, "instance"), []byte(s.instance+"\n")); err != nil {
			return nil, err
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "next_seq")); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64); err == nil {
			s.next = v
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".batch")
		if !ok {
			continue
		}
		seqs, ns, _ := strings.Cut(name, "-")
		seq, err1 := strconv.ParseUint(seqs, 10, 64)
		n, err2 := strconv.Atoi(ns)
		info, err3 := e.Info()
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		s.items = append(s.items, spoolItem{seq: seq, results: n, size: info.Size()})
		s.total += info.Size()
		if seq >= s.next {
			s.next = seq + 1
		}
	}
	sort.Slice(s.items, func(i, j int) bool { return s.items[i].seq < s.items[j].seq })
	return s, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return os.Rename(tmp, path)
}

// append stores a batch; it returns the results dropped to stay within the
// bound (oldest batches first).
func (s *spool) append(results []probes.Result) (dropped int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := spoolItem{seq: s.next, results: len(results)}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(api.Results{BatchID: s.instance + ":" + strconv.FormatUint(it.seq, 10), Results: results}); err != nil {
		return 0, fmt.Errorf("spool: encode: %w", err)
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	// The sequence is persisted before the batch exists, so a crash can
	// skip a number but never reuse one.
	if err := writeFileAtomic(filepath.Join(s.dir, "next_seq"), []byte(strconv.FormatUint(it.seq+1, 10)+"\n")); err != nil {
		return 0, err
	}
	s.next++
	if err := writeFileAtomic(filepath.Join(s.dir, it.name()), buf.Bytes()); err != nil {
		return 0, err
	}
	it.size = int64(buf.Len())
	s.items = append(s.items, it)
	s.total += it.size
	for s.total > s.maxBytes && len(s.items) > 1 {
		old := s.items[0]
		s.items = s.items[1:]
		s.total -= old.size
		dropped += old.results
		_ = os.Remove(filepath.Join(s.dir, old.name()))
	}
	return dropped, nil
}

// oldest returns the first batch: its id, body (gzip JSON) and result count.
func (s *spool) oldest() (it spoolItem, id string, body []byte, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.items) == 0 {
		return spoolItem{}, "", nil, false, nil
	}
	it = s.items[0]
	body, err = os.ReadFile(filepath.Join(s.dir, it.name()))
	if err != nil {
		// Unreadable: drop it rather than block the queue forever.
		s.items = s.items[1:]
		s.total -= it.size
		return it, "", nil, false, fmt.Errorf("spool: read %s: %w", it.name(), err)
	}
	return it, s.instance + ":" + strconv.FormatUint(it.seq, 10), body, true, nil
}

// remove deletes a delivered (or refused) batch.
func (s *spool) remove(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, it := range s.items {
		if it.seq == seq {
			_ = os.Remove(filepath.Join(s.dir, it.name()))
			s.items = append(s.items[:i], s.items[i+1:]...)
			s.total -= it.size
			return
		}
	}
}

func (s *spool) stats() (batches int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items), s.total
}
