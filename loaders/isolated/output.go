package isolated

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// What a child prints reaches the host three ways:
//   - the operator's stdout and stderr (its fds 1 and 2 after the child
//     moved the pipes there) are copied line by line to the runtime's
//     Stdout and Stderr, each line prefixed with the operator id;
//   - the child's own logs are JSON lines (hclog's format) on go-plugin's
//     stderr pipe, re-emitted through the operator's slog.Logger with
//     node=, operator=, loader= and pid= attributes;
//   - anything else on that pipe (a Go runtime crash before the child set
//     up its pipes, go-plugin's complaints) is forwarded like stderr.
// The last stderr lines are kept for crash reports.

// maxLine splits longer lines so one endless line cannot eat memory.
const maxLine = 64 << 10

// forwardMu serialises forwarded lines: operators of a node share the
// runtime's writers, which need not be safe for concurrent use.
var forwardMu sync.Mutex

func writeLine(w io.Writer, prefix string, line []byte) {
	buf := make([]byte, 0, len(prefix)+len(line)+1)
	buf = append(append(append(buf, prefix...), line...), '\n')
	forwardMu.Lock()
	defer forwardMu.Unlock()
	w.Write(buf)
}

// forward copies r to w line by line with prefix until r ends, keeping
// lines in t when t is set. It closes r, then done, at the end.
func forward(r io.ReadCloser, w io.Writer, prefix string, t *tail, done chan<- struct{}) {
	defer close(done)
	defer r.Close()
	br := bufio.NewReaderSize(r, 4096)
	var line []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		line = append(line, chunk...)
		if err != nil {
			if len(line) > 0 {
				emitLine(w, prefix, line, t)
			}
			return
		}
		if isPrefix && len(line) < maxLine {
			continue
		}
		emitLine(w, prefix, line, t)
		line = line[:0]
	}
}

func emitLine(w io.Writer, prefix string, line []byte, t *tail) {
	if t != nil {
		forward, instead := t.add(string(line))
		if instead != "" {
			writeLine(w, prefix, []byte(instead))
		}
		if !forward {
			return
		}
	}
	writeLine(w, prefix, line)
}

// lineWriter calls fn with each complete line written to it (without its
// newline); go-plugin writes a line and its newline separately.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func([]byte)
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.buf = append(lw.buf, p...)
	for {
		i := bytes.IndexByte(lw.buf, '\n')
		if i < 0 {
			if len(lw.buf) >= maxLine {
				lw.fn(lw.buf)
				lw.buf = lw.buf[:0]
			}
			return len(p), nil
		}
		lw.fn(lw.buf[:i])
		lw.buf = lw.buf[:copy(lw.buf, lw.buf[i+1:])]
	}
}

// logLines handles the lines of the child's go-plugin stderr: JSON log
// records go to logger (with pid= from pid), anything else is forwarded
// to stderr and kept in t.
func logLines(logger *slog.Logger, pid func() int, stderr io.Writer, prefix string, t *tail) func([]byte) {
	return func(b []byte) {
		if len(b) == 0 {
			return
		}
		rec, ok := parseLogLine(b)
		if !ok {
			emitLine(stderr, prefix, b, t)
			return
		}
		if rec.Level >= slog.LevelWarn {
			// Why a child gave up is often in its last error log.
			t.add(logText(rec))

		}
		h := logger.Handler()
		if !h.Enabled(context.Background(), rec.Level) {
			return
		}
		if p := pid(); p != 0 {
			rec.AddAttrs(slog.Int("pid", p))
		}
		h.Handle(context.Background(), rec)
	}
}

// parseLogLine reads one JSON log line in hclog's format (@level,
// @message, @timestamp, then attributes) as a slog record.
func parseLogLine(b []byte) (slog.Record, bool) {
	if len(b) < 2 || b[0] != '{' {
		return slog.Record{}, false
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return slog.Record{}, false
	}
	msg, ok1 := m["@message"].(string)
	lvl, ok2 := m["@level"].(string)
	if !ok1 || !ok2 {
		return slog.Record{}, false
	}
	ts := time.Now()
	if s, ok := m["@timestamp"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			ts = t
		}
	}
	rec := slog.NewRecord(ts, logLevel(lvl), msg, 0)
	keys := make([]string, 0, len(m))
	for k := range m {
		// The host's logger names node, operator, loader and pid itself.
		if !strings.HasPrefix(k, "@") && !hostKeys[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		rec.AddAttrs(slog.Any(k, m[k]))
	}
	return rec, true
}

// logText renders a record on one line for a crash report.
func logText(rec slog.Record) string {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	return b.String()
}

var hostKeys = map[string]bool{"node": true, "operator": true, "loader": true, "pid": true}

func logLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "trace", "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error", "fatal":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// childLogHandler is the child's slog handler: JSON lines with hclog's key
// names, so the host reads operator and host logs alike.
func childLogHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				a.Key = "@timestamp"
				a.Value = slog.StringValue(a.Value.Time().Format(time.RFC3339Nano))
			case slog.LevelKey:
				a.Key = "@level"
				a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
			case slog.MessageKey:
				a.Key = "@message"
			}
			return a
		},
	})
}

// lockedWriter makes whole writes atomic between the child's two loggers
// (go-plugin's hclog and the operator's slog) sharing one pipe.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
