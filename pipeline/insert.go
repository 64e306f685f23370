package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// sendError marks an error that happened after the batch started to travel to
// the server: the rows may have been stored.
type sendError struct{ err error }

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

func sent(err error) bool {
	var se *sendError
	return errors.As(err, &se)
}

func (w *tableWriter[T]) insert(ctx context.Context, rows []T, id uint64) (err error) {
	ctx, span := otel.Tracer("github.com/meridian-obs/meridian/pipeline").Start(ctx, "pipeline.insert",
		trace.WithAttributes(attribute.String("db.table", w.tbl.Name), attribute.Int("rows", len(rows))))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "insert failed")
		}
		span.End()
	}()
	conn := w.p.store.Conn()
	if conn == nil {
		return errNotReady
	}
	b, err := conn.PrepareBatch(ctx, w.tbl.insertSQL())
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", w.tbl.Name, err)
	}
	if w.tbl.AppendRows != nil {
		if err := w.tbl.AppendRows(b, rows, id); err != nil {
			_ = b.Abort()
			return &permanentError{fmt.Errorf("append rows to %s: %w", w.tbl.Name, err)}
		}
	} else {
		for i := range rows {
			if err := w.tbl.Append(b, &rows[i], id); err != nil {
				_ = b.Abort()
				return &permanentError{fmt.Errorf("append row to %s: %w", w.tbl.Name, err)}
			}
		}
	}
	if err := b.Send(); err != nil {
		return &sendError{fmt.Errorf("insert %d rows into %s: %w", len(rows), w.tbl.Name, err)}
	}
	return nil
}

func (w *tableWriter[T]) batchRange(rows []T) (int64, int64) {
	lo, hi := DT(w.tbl.Time(&rows[0])).Unix(), DT(w.tbl.Time(&rows[0])).Unix()
	for i := range rows {
		t := DT(w.tbl.Time(&rows[i])).Unix()
		lo, hi = min(lo, t), max(hi, t)
	}
	return lo, hi
}

// countBatch counts the stored rows of batch id. The time bounds let the
// primary key and the partitions prune the scan to the batch's range.
func (w *tableWriter[T]) countBatch(ctx context.Context, rows []T, id uint64) (uint64, error) {
	conn := w.p.store.Conn()
	if conn == nil {
		return 0, errNotReady
	}
	lo, hi := w.batchRange(rows)
	q := fmt.Sprintf("SELECT count() FROM %s WHERE %s >= toDateTime(%d) AND %s <= toDateTime(%d) AND ingest_batch = %d",
		w.tbl.Name, w.tbl.TimeColumn, lo, w.tbl.TimeColumn, hi, id)
	var n uint64
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("count batch in %s: %w", w.tbl.Name, err)
	}
	return n, nil
}

// deleteBatch removes the rows of batch id (a mutation) and waits until the
// mutation is done.
func (w *tableWriter[T]) deleteBatch(ctx context.Context, rows []T, id uint64) error {
	conn := w.p.store.Conn()
	if conn == nil {
		return errNotReady
	}
	if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DELETE WHERE ingest_batch = %d", w.tbl.Name, id)); err != nil {
		return fmt.Errorf("delete partial batch in %s: %w", w.tbl.Name, err)
	}
	for {
		n, err := w.countBatch(ctx, rows, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeAfter(100):
		}
	}
}

// permanentError wraps an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// ClickHouse error codes that retrying cannot fix. Codes that describe a
// schema mismatch fail every row of every batch; the others refuse data.
var (
	schemaCodes = map[int32]bool{
		8:   true, // THERE_IS_NO_COLUMN
		16:  true, // NO_SUCH_COLUMN_IN_TABLE
		47:  true, // UNKNOWN_IDENTIFIER
		60:  true, // UNKNOWN_TABLE
		81:  true, // UNKNOWN_DATABASE
		10:  true, // NOT_FOUND_COLUMN_IN_BLOCK
		20:  true, // NUMBER_OF_COLUMNS_DOESNT_MATCH
		53:  true, // TYPE_MISMATCH
		70:  true, // CANNOT_CONVERT_TYPE
		497: true, // ACCESS_DENIED
	}
	dataCodes = map[int32]bool{
		6:   true, // CANNOT_PARSE_TEXT
		27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
		41:  true, // CANNOT_PARSE_DATETIME
		69:  true, // ARGUMENT_OUT_OF_BOUND
		72:  true, // CANNOT_PARSE_NUMBER
		117: true, // INCORRECT_DATA
		131: true, // TOO_LARGE_STRING_SIZE
		190: true, // SIZES_OF_ARRAYS_DOESNT_MATCH
		469: true, // VIOLATED_CONSTRAINT
	}
)

func exceptionCode(err error) (int32, bool) {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return ex.Code, true
	}
	return 0, false
}

func isSchemaError(err error) bool {
	c, ok := exceptionCode(err)
	return ok && schemaCodes[c]
}

func isPermanent(err error) bool {
	if err == nil {
		return false
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		return true
	}
	c, ok := exceptionCode(err)
	if ok {
		return schemaCodes[c] || dataCodes[c]
	}
	// clickhouse-go reports a column/type mismatch found while preparing
	// the batch as a plain error.
	msg := err.Error()
	return strings.Contains(msg, "expected ") && strings.Contains(msg, " arguments")
}

func timeAfter(ms int) <-chan time.Time { return time.After(time.Duration(ms) * time.Millisecond) }
