package pipeline

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tableWriter is the queue, flusher and replayer of one table.
type tableWriter[T any] struct {
	p   *Pipeline
	tbl *Table[T]
	log *slog.Logger

	// The queue is a list of chunks of FlushRows rows each: the flusher
	// takes a full chunk without copying, and chunks are recycled.
	mu     sync.Mutex
	chunks [][]T // oldest first; only the last may be partly filled
	queued int
	free   [][]T
	space  chan struct{} // closed (and replaced) when the flusher takes rows
	closed bool

	kick       chan struct{} // the queue reached FlushRows, or stop
	replayKick chan struct{}
	stopCh     chan struct{}
	flushDone  chan struct{}
	replayDone chan struct{}
	stopCtx    context.Context // bounds the drain at Stop
	stopCtxSet chan struct{}

	// insertFn inserts one batch; tests replace it to inject failures.
	insertFn func(ctx context.Context, rows []T, batchID uint64) error

	cReceived, cWritten, cSpooled, cReplayed, cDedup prometheus.Counter
	gQueue                                           prometheus.Gauge
	hFlush                                           prometheus.Observer
}

func newTableWriter[T any](p *Pipeline, tbl *Table[T]) *tableWriter[T] {
	m := p.metrics
	w := &tableWriter[T]{
		p: p, tbl: tbl, log: p.log.With("table", tbl.Name),
		space:      make(chan struct{}),
		kick:       make(chan struct{}, 1),
		replayKick: make(chan struct{}, 1),
		stopCh:     make(chan struct{}),
		flushDone:  make(chan struct{}),
		replayDone: make(chan struct{}),
		stopCtxSet: make(chan struct{}),
		cReceived:  m.received.WithLabelValues(tbl.Name),
		cWritten:   m.written.WithLabelValues(tbl.Name),
		cSpooled:   m.spooled.WithLabelValues(tbl.Name),
		cReplayed:  m.replayed.WithLabelValues(tbl.Name),
		cDedup:     m.deduplicated.WithLabelValues(tbl.Name),
		gQueue:     m.queue.WithLabelValues(tbl.Name),
		hFlush:     m.flush.WithLabelValues(tbl.Name),
	}
	w.insertFn = w.insert
	return w
}

func (w *tableWriter[T]) name() string { return w.tbl.Name }

// Write queues rows, blocking while the queue is full.
func (w *tableWriter[T]) Write(ctx context.Context, rows []T) error {
	size := w.p.cfg.FlushRows
	for len(rows) > 0 {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return ErrStopped
		}
		free := w.p.cfg.QueueRows - w.queued
		if free > 0 {
			last := len(w.chunks) - 1
			if last < 0 || len(w.chunks[last]) == size {
				w.chunks = append(w.chunks, w.newChunkLocked())
				last++
			}
			cur := w.chunks[last]
			n := min(free, size-len(cur), len(rows))
			w.chunks[last] = append(cur, rows[:n]...)
			w.queued += n
			rows = rows[n:]
			full := len(w.chunks[last]) == size
			w.gQueue.Set(float64(w.queued))
			w.mu.Unlock()
			w.cReceived.Add(float64(n))
			if full {
				select {
				case w.kick <- struct{}{}:
				default:
				}
			}
			continue
		}
		wait := w.space
		w.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("%s queue full: %w", w.tbl.Name, ctx.Err())
		}
	}
	return nil
}

func (w *tableWriter[T]) newChunkLocked() []T {
	if n := len(w.free); n > 0 {
		c := w.free[n-1]
		w.free = w.free[:n-1]
		return c
	}
	return make([]T, 0, w.p.cfg.FlushRows)
}

func (w *tableWriter[T]) start() {
	go w.flushLoop()
	go w.replayLoop()
}

func (w *tableWriter[T]) stop(ctx context.Context) error {
	w.mu.Lock()
	already := w.closed
	w.closed = true
	w.mu.Unlock()
	if !already {
		w.stopCtx = ctx
		close(w.stopCtxSet)
		close(w.stopCh)
	}
	select {
	case <-w.flushDone:
	case <-ctx.Done():
		return fmt.Errorf("flush at stop: %w", ctx.Err())
	}
	select {
	case <-w.replayDone:
	case <-ctx.Done():
		return fmt.Errorf("spool drain at stop: %w", ctx.Err())
	}
	return nil
}

// take removes the oldest chunk when it is full, or when partial is set
// and it holds any rows.
func (w *tableWriter[T]) take(partial bool) []T {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.chunks) == 0 {
		return nil
	}
	c := w.chunks[0]
	if len(c) == 0 || (!partial && len(c) < w.p.cfg.FlushRows) {
		return nil
	}
	w.chunks[0] = nil
	w.chunks = w.chunks[1:]
	w.queued -= len(c)
	close(w.space)
	w.space = make(chan struct{})
	w.gQueue.Set(float64(w.queued))
	return c
}

// recycle returns a delivered chunk to the free list.
func (w *tableWriter[T]) recycle(c []T) {
	clear(c)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.free) < 4 {
		w.free = append(w.free, c[:0])
	}
}

func (w *tableWriter[T]) flushLoop() {
	defer close(w.flushDone)
	t := time.NewTicker(w.p.cfg.FlushInterval)
	defer t.Stop()
	for {
		partial := false
		stopping := false
		select {
		case <-w.kick:
		case <-t.C:
			partial = true
		case <-w.stopCh:
			partial, stopping = true, true
		}
		// Full chunks first; on the timer (or at stop) the partial one too.
		for {
			rows := w.take(partial)
			if rows == nil {
				break
			}
			w.deliver(w.ctx(), rows)
			w.recycle(rows)
		}
		if stopping {
			return
		}
	}
}

// ctx is the context of ClickHouse calls: background while running, the
// Stop deadline while stopping.
func (w *tableWriter[T]) ctx() context.Context {
	select {
	case <-w.stopCtxSet:
		return w.stopCtx
	default:
		return context.Background()
	}
}

// deliver splits rows into batches of at most FlushRows rows of one day
// (one ClickHouse partition: each insert then writes a single part, which the
// server commits atomically) and writes or spools each.
func (w *tableWriter[T]) deliver(ctx context.Context, rows []T) {
	for len(rows) > 0 {
		n := min(len(rows), w.p.cfg.FlushRows)
		day := dayOf(w.tbl.Time(&rows[0]))
		for i := 1; i < n; i++ {
			if dayOf(w.tbl.Time(&rows[i])) != day {
				n = i
				break
			}
		}
		w.send(ctx, rows[:n])
		rows = rows[n:]
	}
}

func dayOf(t time.Time) int64 { return DT(t).Unix() / 86400 }

// send writes one batch directly, or to the spool when the spool already
// holds batches of this table (order is kept), when ClickHouse is not ready,
// or when the insert keeps failing.
func (w *tableWriter[T]) send(ctx context.Context, rows []T) {
	id := rand.Uint64()
	if w.p.spool.len(w.tbl.Name) > 0 || !w.p.store.Ready() {
		w.toSpool(rows, id, false)
		return
	}
	attempted, err := w.insertRetry(ctx, rows, id, false, w.p.cfg.Attempts)
	switch {
	case err == nil:
	case isPermanent(err):
		w.permanent(ctx, rows, err)
	default:
		w.log.Warn("insert failed; batch goes to the spool", "rows", len(rows), "err", err)
		w.toSpool(rows, id, attempted)
	}
}

func (w *tableWriter[T]) toSpool(rows []T, id uint64, attempted bool) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(rows); err != nil {
		w.drop(len(rows), "spool_error", err)
		return
	}
	ok, err := w.p.spool.put(w.tbl.Name, id, len(rows), attempted, buf.Bytes())
	switch {
	case err != nil:
		w.drop(len(rows), "spool_error", err)
	case !ok:
		w.drop(len(rows), "too_large", fmt.Errorf("batch of %d bytes exceeds spool_max_bytes", buf.Len()))
	default:
		w.cSpooled.Add(float64(len(rows)))
		select {
		case w.replayKick <- struct{}{}:
		default:
		}
	}
}

func (w *tableWriter[T]) drop(rows int, reason string, err error) {
	w.p.metrics.dropped.WithLabelValues(w.tbl.Name, reason).Add(float64(rows))
	w.log.Error("rows dropped", "rows", rows, "reason", reason, "err", err)
}

// insertRetry makes up to attempts inserts with exponential backoff. Before
// each retry of a batch that may have landed (an insert was sent), it counts
// the batch's rows in ClickHouse: all there means done; none means insert
// again; some (not expected: a batch is one part) means delete them first.
// It reports whether an insert was sent at all.
func (w *tableWriter[T]) insertRetry(ctx context.Context, rows []T, id uint64, attempted bool, attempts int) (bool, error) {
	backoff := w.p.cfg.InitialBackoff
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return attempted, ctx.Err()
			}
			backoff = min(backoff*2, w.p.cfg.MaxBackoff)
		}
		if attempted {
			var done bool
			done, err = w.reconcile(ctx, rows, id)
			if err != nil {
				w.p.metrics.insertErrors.WithLabelValues(w.tbl.Name, "retryable").Inc()
				continue
			}
			if done {
				return true, nil
			}
		}
		start := time.Now()
		err = w.insertFn(ctx, rows, id)
		if err == nil {
			w.hFlush.Observe(time.Since(start).Seconds())
			w.cWritten.Add(float64(len(rows)))
			return true, nil
		}
		attempted = attempted || sent(err)
		if isPermanent(err) {
			w.p.metrics.insertErrors.WithLabelValues(w.tbl.Name, "permanent").Inc()
			return attempted, err
		}
		w.p.metrics.insertErrors.WithLabelValues(w.tbl.Name, "retryable").Inc()
	}
	return attempted, err
}

// reconcile checks whether batch id is stored: true when all its rows are.
func (w *tableWriter[T]) reconcile(ctx context.Context, rows []T, id uint64) (bool, error) {
	n, err := w.countBatch(ctx, rows, id)
	if err != nil {
		return false, err
	}
	switch {
	case n == uint64(len(rows)):
		w.cDedup.Add(float64(len(rows)))
		w.cWritten.Add(float64(len(rows)))
		w.log.Info("retried batch was already stored; not inserting again", "rows", len(rows), "batch", id)
		return true, nil
	case n == 0:
		return false, nil
	default:
		w.log.Warn("retried batch partly stored; deleting its rows before inserting again", "stored", n,
			"rows", len(rows), "batch", id)
		return false, w.deleteBatch(ctx, rows, id)
	}
}

// permanent handles an error that retrying cannot fix. A schema mismatch
// fails every row: the batch is dropped. Otherwise the batch is bisected so
// that only the rows ClickHouse refuses are dropped.
func (w *tableWriter[T]) permanent(ctx context.Context, rows []T, err error) {
	if isSchemaError(err) || len(rows) == 1 {
		reason := "rejected"
		if isSchemaError(err) {
			reason = "schema"
		}
		w.drop(len(rows), reason, err)
		return
	}
	half := len(rows) / 2
	for _, part := range [][]T{rows[:half], rows[half:]} {
		id := rand.Uint64()
		attempted, err := w.insertRetry(ctx, part, id, false, w.p.cfg.Attempts)
		switch {
		case err == nil:
		case isPermanent(err):
			w.permanent(ctx, part, err)
		default:
			w.toSpool(part, id, attempted)
		}
	}
}

func (w *tableWriter[T]) replayLoop() {
	defer close(w.replayDone)
	t := time.NewTicker(w.p.cfg.ReplayInterval)
	defer t.Stop()
	for {
		stopping := false
		select {
		case <-t.C:
		case <-w.replayKick:
			// A new spool entry: wait for the next tick unless ClickHouse
			// is ready (then the entry was spooled to keep order).
			if !w.p.store.Ready() {
				continue
			}
		case <-w.flushDone:
			stopping = true
		}
		w.replay(w.ctx())
		if stopping {
			return
		}
	}
}

// replay writes spooled batches, oldest first, until one fails.
func (w *tableWriter[T]) replay(ctx context.Context) {
	for ctx.Err() == nil && w.p.store.Ready() {
		e, data, err := w.p.spool.head(w.tbl.Name)
		if e == nil {
			return
		}
		var rows []T
		if err == nil {
			err = gob.NewDecoder(bytes.NewReader(data)).Decode(&rows)
		}
		if err != nil {
			w.p.spool.done(e)
			w.drop(e.rows, "spool_corrupt", err)
			continue
		}
		if err := w.p.spool.markAttempted(e); err != nil {
			w.p.spool.release(e)
			w.log.Warn("spool", "err", err)
			return
		}
		_, err = w.insertRetry(ctx, rows, e.batchID, true, 1)
		switch {
		case err == nil:
			w.cReplayed.Add(float64(len(rows)))
			w.p.spool.done(e)
		case isPermanent(err):
			w.p.spool.done(e)
			w.permanent(ctx, rows, err)
		default:
			w.p.spool.release(e)
			return
		}
	}
}

// errNotReady is returned by insert before the store has a connection.
var errNotReady = errors.New("clickhouse not ready")
