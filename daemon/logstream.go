package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dora-go/dora/internal/control"
)

// Log streaming: READ_LOGS sends a node's log file as DAEMON_LOG frames,
// and with Follow keeps sending what the node writes until it exits.

const (
	logChunk      = 32 << 10
	logPoll       = 100 * time.Millisecond
	outputFlush   = 50 * time.Millisecond
	outputMaxHeld = 32 << 10
)

// startLogs starts answering rl; the answer ends with DAEMON_LOG_END.
func (s *server) startLogs(ctx context.Context, sess *session, rl control.ReadLogs) {
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.cancels[rl.Req] = cancel
	s.mu.Unlock()
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.cancels, rl.Req)
			s.mu.Unlock()
			cancel()
		}()
		err := s.streamLogs(ctx, sess, rl)
		end := control.LogChunk{Req: rl.Req}
		if err != nil && ctx.Err() == nil {
			end.Error = err.Error()
		}
		s.sendWait(ctx, sess, control.KindDaemonLogEnd, end)
	}()
}

func (s *server) streamLogs(ctx context.Context, sess *session, rl control.ReadLogs) error {
	path, err := s.logFile(rl.UUID, rl.Node)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("machine %s: %w", machineName(s.o.MachineID), err)
	}
	defer f.Close()
	buf := make([]byte, logChunk)
	// Once the node has exited, one more pass after a pause reads what
	// its output pipes still held.
	lastPass := false
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if err := s.sendWait(ctx, sess, control.KindDaemonLog, control.LogChunk{Req: rl.Req, Data: buf[:n]}); err != nil {
				return err
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if !rl.Follow || lastPass {
			return nil
		}
		lastPass = s.nodeDone(rl.UUID, rl.Node)
		wait := logPoll
		if lastPass {
			wait = 2 * logPoll
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// logFile is the log of a node this daemon runs or ran.
func (s *server) logFile(uuid, node string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if run := s.runs[uuid]; run != nil {
		if !slices.Contains(run.spawn.Nodes, node) {
			return "", fmt.Errorf("node %q of dataflow %s does not run on machine %s", node, uuid, machineName(s.o.MachineID))
		}
		return logPath(run.inst.logDir, node), nil
	}
	for _, e := range s.ended {
		if e.uuid == uuid {
			if !slices.Contains(e.nodes, node) {
				return "", fmt.Errorf("node %q of dataflow %s did not run on machine %s", node, uuid, machineName(s.o.MachineID))
			}
			return logPath(e.logDir, node), nil
		}
	}
	return "", fmt.Errorf("machine %s does not know dataflow %s (its daemon may have restarted)", machineName(s.o.MachineID), uuid)
}

func (s *server) nodeDone(uuid, node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	run := s.runs[uuid]
	return run == nil || run.exited[node]
}

// sendWait queues a frame for sess, waiting for room.
func (s *server) sendWait(ctx context.Context, sess *session, k control.Kind, v any) error {
	body, err := jsonBody(v)
	if err != nil {
		return err
	}
	select {
	case sess.out <- outFrame{kind: k, body: body}:
		return nil
	case <-sess.done:
		return errors.New("the coordinator went away")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outputForwarder sends node output to the coordinator for an attached
// CLI, in batches: at most outputFlush late, at most outputMaxHeld bytes.
type outputForwarder struct {
	s    *server
	uuid string

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer
}

func (f *outputForwarder) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, p...)
	switch {
	case len(f.buf) >= outputMaxHeld:
		f.flushLocked()
	case f.timer == nil:
		f.timer = time.AfterFunc(outputFlush, f.flush)
	}
	return len(p), nil
}

func (f *outputForwarder) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushLocked()
}

func (f *outputForwarder) flushLocked() {
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	if len(f.buf) == 0 {
		return
	}
	f.s.send(control.KindNodeOutput, control.Output{UUID: f.uuid, Data: f.buf})
	f.buf = nil
}
