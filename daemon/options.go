// Package daemon runs the nodes of a dataflow on one machine: it spawns
// them, routes their messages through per-input queues, drives timers, and
// reports how each node ended.
package daemon

import (
	"io"
	"log/slog"
	"os"
	"time"
)

// Options configure a daemon run.
type Options struct {
	// Logger receives the daemon's own messages; nil discards them.
	Logger *slog.Logger
	// Output receives every node's stdout and stderr lines prefixed with
	// the node id; nil discards them (log files still get them).
	Output io.Writer
	// LogDir is the folder for per-node log files; empty means
	// <dataflow dir>/out/<dataflow id>.
	LogDir string
	// ConnectTimeout bounds how long nodes may take to connect before the
	// dataflow fails; zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Grace is how long nodes get to exit after Stop before they are
	// killed; zero means DefaultGrace.
	Grace time.Duration
	// StopAfter stops the dataflow this long after it started (every node
	// connected); zero lets it run until its nodes finish.
	StopAfter time.Duration
	// RuntimeExe is the dora binary started (as `dora runtime`) for
	// runtime nodes; empty means the current executable.
	RuntimeExe string
	// ShmThreshold is the payload size from which messages travel through
	// shared memory; zero means wire.DefaultShmThreshold.
	ShmThreshold int
	// DataflowID names the run; empty means a new UUID.
	DataflowID string
	// Env is added to every node's environment.
	Env []string
}

// Defaults for Options.
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultGrace          = 10 * time.Second
)

func (o *Options) fill() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.RuntimeExe == "" {
		o.RuntimeExe, _ = os.Executable()
	}
}
