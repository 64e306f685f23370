package vpc

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/meridian-obs/meridian/collectors/firewall"
	"github.com/meridian-obs/meridian/pipeline/record"
)

// Options of an ingestion. The zero value reads the default format.
type Options struct {
	// Fields is the format of files without a header line (DefaultFields
	// when empty). A header line in a file overrides it for that file.
	Fields []string
	// Region is the exporter region of records without a region field.
	Region string
	// Networks locates source and destination addresses (region, site).
	Networks *firewall.PrefixTable
	// BatchRows bounds a batch written to the sink (default 5000).
	BatchRows int
	// MaxLineBytes bounds a line (default 64 KiB).
	MaxLineBytes int
	Metrics      *Metrics
	Log          *slog.Logger
	// Now gives the received time of records without an end time.
	Now func() time.Time
}

// FileError is one problem in one file.
type FileError struct {
	File   string
	Line   int // 0 for a file-level problem
	Reason string
	Err    string
}

// Stats of an ingestion.
type Stats struct {
	Files    int            // files read
	Lines    int            // lines read, headers included
	Records  int            // flows written to the sink
	NoData   int            // NODATA records (counted, not stored)
	SkipData int            // SKIPDATA records (counted, not stored)
	Bad      map[string]int // bad records and files by reason
	Errors   []FileError    // the first MaxErrors problems, with file and line
}

// MaxErrors bounds Stats.Errors.
const MaxErrors = 100

func (s *Stats) bad(file string, line int, reason string, err error) {
	if s.Bad == nil {
		s.Bad = map[string]int{}
	}
	s.Bad[reason]++
	if len(s.Errors) < MaxErrors {
		fe := FileError{File: file, Line: line, Reason: reason}
		if err != nil {
			fe.Err = err.Error()
		}
		s.Errors = append(s.Errors, fe)
	}
}

// String is a one-line summary for the CLI.
func (s Stats) String() string {
	b := fmt.Sprintf("%d files, %d lines: %d flows stored, %d NODATA, %d SKIPDATA, %d bad", s.Files, s.Lines, s.Records, s.NoData, s.SkipData, s.BadTotal())
	if len(s.Bad) > 0 {
		reasons := make([]string, 0, len(s.Bad))
		for r, n := range s.Bad {
			reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
		}
		sort.Strings(reasons)
		b += " (" + strings.Join(reasons, ", ") + ")"
	}
	return b
}

// BadTotal is the number of bad records and files.
func (s Stats) BadTotal() int {
	n := 0
	for _, v := range s.Bad {
		n += v
	}
	return n
}

func (s *Stats) add(o Stats) {
	s.Files += o.Files
	s.Lines += o.Lines
	s.Records += o.Records
	s.NoData += o.NoData
	s.SkipData += o.SkipData
	for k, v := range o.Bad {
		if s.Bad == nil {
			s.Bad = map[string]int{}
		}
		s.Bad[k] += v
	}
	for _, e := range o.Errors {
		if len(s.Errors) < MaxErrors {
			s.Errors = append(s.Errors, e)
		}
	}
}

func (o *Options) defaults() error {
	if len(o.Fields) == 0 {
		o.Fields = DefaultFields
	}
	if _, err := NewFormat(o.Fields); err != nil {
		return err
	}
	if o.BatchRows <= 0 {
		o.BatchRows = 5000
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = 64 << 10
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// IngestPath reads the file at path, or every regular file under the
// directory path (in name order), into sink. It is what
// `meridian ingest vpc-logs PATH` runs. Bad records, corrupt gzip streams
// and unreadable files are counted in Stats (with file, line and reason) and
// the good records around them are written; the error is for what stops the
// whole ingestion: path unreadable, ctx done, or the sink refusing rows.
func IngestPath(ctx context.Context, path string, sink record.Sink[record.Flow], opts Options) (Stats, error) {
	if err := opts.defaults(); err != nil {
		return Stats{}, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return Stats{}, fmt.Errorf("vpc: %w", err)
	}
	files := []string{path}
	if st.IsDir() {
		files = files[:0]
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return Stats{}, fmt.Errorf("vpc: %w", err)
		}
		sort.Strings(files)
	}
	var total Stats
	for _, f := range files {
		s, err := IngestFile(ctx, f, sink, opts)
		total.add(s)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// IngestFile reads one file (plain or gzip, detected by its magic bytes).
func IngestFile(ctx context.Context, name string, sink record.Sink[record.Flow], opts Options) (Stats, error) {
	if err := opts.defaults(); err != nil {
		return Stats{}, err
	}
	var st Stats
	f, err := os.Open(name)
	if err != nil {
		st.bad(name, 0, ReasonOpen, err)
		opts.Metrics.bad(ReasonOpen)
		opts.Log.Warn("vpc log unreadable", "file", name, "reason", ReasonOpen, "err", err)
		return st, nil
	}
	defer f.Close()
	st.Files = 1
	err = ingestReader(ctx, name, f, sink, opts, &st)
	opts.Metrics.file(err == nil && st.BadTotal() == 0)
	return st, err
}

// ingestReader reads records from r into sink, counting into st.
func ingestReader(ctx context.Context, name string, r io.Reader, sink record.Sink[record.Flow], opts Options, st *Stats) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			st.bad(name, 0, ReasonCorrupt, err)
			opts.Metrics.bad(ReasonCorrupt)
			opts.Log.Warn("vpc log corrupt", "file", name, "reason", ReasonCorrupt, "err", err)
			return nil
		}
		defer zr.Close()
		src = zr
	}
	lr := bufio.NewReaderSize(src, opts.MaxLineBytes+2)
	format, _ := NewFormat(opts.Fields)
	rows := make([]record.Flow, 0, min(opts.BatchRows, 4096))
	var ar arena
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		if err := sink.Write(ctx, rows); err != nil {
			return fmt.Errorf("vpc: %s: %w", name, err)
		}
		st.Records += len(rows)
		opts.Metrics.records(StatusOK, len(rows))
		clear(rows)
		rows = rows[:0]
		return nil
	}
	lineNo := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := lr.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			lineNo++
			st.Lines++
			st.bad(name, lineNo, ReasonTooLong, nil)
			opts.Metrics.bad(ReasonTooLong)
			for err == bufio.ErrBufferFull {
				_, err = lr.ReadSlice('\n')
			}
			if err == nil {
				continue
			}
			b = nil
		}
		if err != nil && err != io.EOF {
			// A corrupt or truncated compressed stream: what came before is
			// kept; the partial last line is not trusted.
			reason := ReasonRead
			if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "flate") {
				reason = ReasonCorrupt
			}
			st.bad(name, lineNo+1, reason, err)
			opts.Metrics.bad(reason)
			opts.Log.Warn("vpc log cut short", "file", name, "line", lineNo+1, "reason", reason, "err", err)
			return flush()
		}
		if line := bytes.TrimRight(b, "\r\n"); len(line) > 0 {
			lineNo++
			st.Lines++
			s := ar.str(line)
			if isHeader(s) { // first line of a file, or of a concatenated gzip member
				f, ferr := NewFormat(strings.Fields(s))
				if ferr != nil {
					st.bad(name, lineNo, ReasonBadHeader, ferr)
					opts.Metrics.bad(ReasonBadHeader)
					opts.Log.Warn("vpc log header unusable", "file", name, "err", ferr)
					return flush()
				}
				format = f
			} else {
				rows = append(rows, record.Flow{})
				fl := &rows[len(rows)-1]
				status, reason := format.parseLine(s, fl)
				switch {
				case reason != "":
					rows = rows[:len(rows)-1]
					st.bad(name, lineNo, reason, nil)
					opts.Metrics.bad(reason)
				case status == StatusNoData:
					rows = rows[:len(rows)-1]
					st.NoData++
					opts.Metrics.records(StatusNoData, 1)
				case status == StatusSkipData:
					rows = rows[:len(rows)-1]
					st.SkipData++
					opts.Metrics.records(StatusSkipData, 1)
				default:
					enrich(fl, &opts)
				}
				if len(rows) >= opts.BatchRows {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if err == io.EOF {
			return flush()
		}
	}
}

func enrich(fl *record.Flow, opts *Options) {
	fl.TimeReceived = fl.TimeEnd
	if fl.TimeReceived.IsZero() {
		fl.TimeReceived = opts.Now().UTC()
	}
	if fl.ExporterRegion == "" {
		fl.ExporterRegion = opts.Region
	}
	if opts.Networks != nil {
		if loc, ok := opts.Networks.Lookup(fl.SrcAddr); ok {
			fl.SrcRegion, fl.SrcSite = loc.Region, loc.Site
		}
		if loc, ok := opts.Networks.Lookup(fl.DstAddr); ok {
			fl.DstRegion, fl.DstSite = loc.Region, loc.Site
		}
	}
}

// arena: see collectors/firewall; lines become strings without one
// allocation each.
type arena struct{ chunk []byte }

func (a *arena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(a.chunk)-len(a.chunk) < len(b) {
		a.chunk = make([]byte, 0, max(256<<10, len(b)))
	}
	off := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return unsafe.String(&a.chunk[off], len(b))
}
