package daemon

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// tailLines is how many stderr lines a failed node's summary shows.
const tailLines = 15

// nodeLogs captures one node's stdout and stderr: each line goes to the
// terminal with the node id in front, and to the node's log file.
type nodeLogs struct {
	inst             *instance
	id               string
	path             string
	file             *os.File
	stdoutW, stderrW *os.File
	readers          sync.WaitGroup

	mu   sync.Mutex // guards file writes and tail
	tail []string
}

func newNodeLogs(inst *instance, id string) (*nodeLogs, error) {
	l := &nodeLogs{inst: inst, id: id, path: logPath(inst.logDir, id)}
	var err error
	if l.file, err = os.Create(l.path); err != nil {
		return nil, fmt.Errorf("creating log file: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		l.file.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		l.file.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	l.stdoutW, l.stderrW = outW, errW
	l.readers.Add(2)
	go l.copyLines(outR, false)
	go l.copyLines(errR, true)
	return l, nil
}

// closeWriters drops the daemon's copies of the pipes' write ends once the
// child has its own.
func (l *nodeLogs) closeWriters() {
	l.stdoutW.Close()
	l.stderrW.Close()
}

func (l *nodeLogs) copyLines(r *os.File, stderr bool) {
	defer l.readers.Done()
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	prefix := []byte(l.id + ": ")
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				line = append(line, '\n')
			}
			l.write(prefix, line, stderr)
			line = line[:0]
		}
		if err != nil {
			if err != io.EOF {
				l.inst.log.Debug("reading node output", "node", l.id, "err", err)
			}
			return
		}
	}
}

func (l *nodeLogs) write(prefix, line []byte, stderr bool) {
	l.inst.outMu.Lock()
	l.inst.opts.Output.Write(append(append(make([]byte, 0, len(prefix)+len(line)), prefix...), line...))
	l.inst.outMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.file.Write(line)
	if stderr {
		if len(l.tail) == tailLines {
			l.tail = append(l.tail[:0], l.tail[1:]...)
		}
		l.tail = append(l.tail, string(bytes.TrimRight(line, "\r\n")))
	}
}

// finish waits for the node's output to end, but not forever: a child the
// node left behind may hold the pipes open.
func (l *nodeLogs) finish(wait time.Duration) []string {
	done := make(chan struct{})
	go func() { l.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.file.Close()
	return append([]string(nil), l.tail...)
}
