package runtimetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
)

// Script tells the mock operator how to misbehave. The zero Script is a
// well-behaved FixtureEcho. Event numbers count INPUT events from 1.
type Script struct {
	FailInit     bool
	MissingEntry bool
	ErrorOn      int
	PanicOn      int
	// HangOn blocks the N-th input until Release is closed, ignoring ctx,
	// as a stuck native call would.
	HangOn  int
	Release chan struct{}
	// Delay is spent in every INPUT event, honouring ctx.
	Delay time.Duration
	// ExitOn ends the whole process with ExitCode, as a crashing native
	// operator would.
	ExitOn   int
	ExitCode int
	// Reloads, when set, is incremented by every Reload, which succeeds.
	Reloads *atomic.Int32
}

// MockLoader loads scripted operators. Spec paths name scripts: a path in
// Scripts gets that script, "mock:echo" a well-behaved echo, anything else
// is a missing file.
type MockLoader struct {
	Scripts map[string]Script

	mu     sync.Mutex
	loaded int
}

var (
	_ runtime.Loader   = (*MockLoader)(nil)
	_ runtime.Reloader = (*mockOperator)(nil)
)

// Loaded counts successful loads.
func (l *MockLoader) Loaded() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loaded
}

// Load implements runtime.Loader.
func (l *MockLoader) Load(ctx context.Context, spec runtime.OperatorSpec) (runtime.Operator, error) {
	fail := func(phase runtime.Phase, err error) error {
		return &runtime.OperatorError{Node: spec.NodeID, Operator: spec.Operator.ID, Loader: "mock", Phase: phase, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(runtime.PhaseLoad, err)
	}
	s, ok := l.Scripts[spec.Path]
	if !ok && spec.Path != "mock:echo" {
		return nil, fail(runtime.PhaseLoad, fmt.Errorf("%s: %w", spec.Path, os.ErrNotExist))
	}
	switch {
	case s.MissingEntry:
		return nil, fail(runtime.PhaseLoad, fmt.Errorf("%w: on_event", runtime.ErrMissingSymbol))
	case s.FailInit:
		return nil, fail(runtime.PhaseInit, fmt.Errorf("%w: init failed on purpose", runtime.ErrOperatorError))
	}
	l.mu.Lock()
	l.loaded++
	l.mu.Unlock()
	return &mockOperator{script: s, fail: fail}, nil
}

type mockOperator struct {
	script Script
	fail   func(runtime.Phase, error) error
	inputs int
}

func (o *mockOperator) OnEvent(ctx context.Context, ev *runtime.Event, out runtime.Sender) (runtime.Status, error) {
	if ev.Type != runtime.EventInput {
		return runtime.StatusContinue, nil
	}
	o.inputs++
	s := o.script
	switch o.inputs {
	case s.ErrorOn:
		return runtime.StatusContinue, o.fail(runtime.PhaseEvent, fmt.Errorf("%w: scripted error on event %d", runtime.ErrOperatorError, o.inputs))
	case s.PanicOn:
		panic(fmt.Sprintf("scripted panic on event %d", o.inputs))
	case s.HangOn:
		<-s.Release
	case s.ExitOn:
		os.Exit(s.ExitCode)
	}
	if s.Delay > 0 {
		select {
		case <-time.After(s.Delay):
		case <-ctx.Done():
			return runtime.StatusContinue, o.fail(runtime.PhaseEvent, ctx.Err())
		}
	}
	return echo(ev, o.inputs, out, o.fail)
}

// echo implements FixtureEcho for Go-hosted operators.
func echo(ev *runtime.Event, inputs int, out runtime.Sender, fail func(runtime.Phase, error) error) (runtime.Status, error) {
	var err error
	switch ev.ID {
	case "fail":
		return runtime.StatusContinue, fail(runtime.PhaseEvent, fmt.Errorf("%w: requested failure", runtime.ErrOperatorError))
	case "stop":
		return runtime.StatusStop, nil
	case "stop_all":
		return runtime.StatusStopAll, nil
	case "count":
		err = out.Send(runtime.Output{ID: "count", Data: []byte(strconv.Itoa(inputs))})
	default:
		err = out.Send(runtime.Output{ID: ev.ID, Data: ev.Data})
	}
	if err != nil {
		return runtime.StatusContinue, fail(runtime.PhaseEvent, fmt.Errorf("send_output: %w", err))
	}
	return runtime.StatusContinue, nil
}

func (o *mockOperator) Close() error { return nil }

// Reload implements runtime.Reloader; state (the input count) survives.
func (o *mockOperator) Reload(ctx context.Context, spec runtime.OperatorSpec) error {
	if o.script.Reloads == nil {
		return o.fail(runtime.PhaseReload, errors.New("this mock operator cannot reload"))
	}
	o.script.Reloads.Add(1)
	return nil
}

// MockHarness runs the conformance suite against MockLoader, which keeps the
// suite itself honest.
func MockHarness() Harness {
	return Harness{
		Kind:      descriptor.SourceKind("mock"),
		NewLoader: func(*testing.T) runtime.Loader { return newConformanceMock() },
		Fixture: func(t *testing.T, f Fixture) runtime.OperatorSpec {
			return runtime.OperatorSpec{NodeID: "node", Operator: &descriptor.Operator{ID: string(f)}, Path: "mock:" + string(f)}
		},
		NotAModule: func(t *testing.T) string { return "mock:not-a-module" },
	}
}

func newConformanceMock() *MockLoader {
	return &MockLoader{Scripts: map[string]Script{
		"mock:" + string(FixtureInitError):         {FailInit: true},
		"mock:" + string(FixtureMissingEntryPoint): {MissingEntry: true},
	}}
}
