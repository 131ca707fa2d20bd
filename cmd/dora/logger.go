package main

import (
	"io"
	"log/slog"
)

// newLogger logs to w from level quiet up, or with --verbose everything
// from debug up.
func newLogger(w io.Writer, verbose bool, quiet slog.Level) *slog.Logger {
	if verbose {
		quiet = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: quiet}))
}
