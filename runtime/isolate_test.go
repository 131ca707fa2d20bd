package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dora-go/dora/runtime"
	"github.com/dora-go/dora/runtime/runtimetest"
)

const isolatedAndNot = `
nodes:
  - id: src
    path: /bin/true
    outputs: [x, y]
  - id: rt
    operators:
      - id: a
        python: a.py
        isolate: true
        inputs: {x: src/x}
        outputs: [x]
      - id: b
        python: b.py
        inputs: {y: src/y}
        outputs: [y]
`

// countingLoader counts loads and hands them to inner.
type countingLoader struct {
	inner runtime.Loader
	loads atomic.Int32
}

func (l *countingLoader) Load(ctx context.Context, spec runtime.OperatorSpec) (runtime.Operator, error) {
	l.loads.Add(1)
	return l.inner.Load(ctx, spec)
}

func TestIsolatedOperatorsGoToTheIsolatedLoader(t *testing.T) {
	d := newFakeDaemon()
	cfg := setup(t, isolatedAndNot, nil)
	mock := cfg.Loaders["python"].(*runtimetest.MockLoader)
	isolated := &countingLoader{inner: mock}
	cfg.Isolated = isolated
	done := run(t, d, cfg)
	d.input("a/x", "via isolated")
	d.input("b/y", "in process")
	d.stop()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if n := isolated.loads.Load(); n != 1 {
		t.Errorf("the isolated loader loaded %d operators, want 1 (a)", n)
	}
	if n := mock.Loaded(); n != 2 {
		t.Errorf("%d operators loaded in all, want 2", n)
	}
	got, _, _ := d.snapshot()
	if len(got) != 2 {
		t.Errorf("sent %v, want both echoes", got)
	}
}

func TestIsolateWithoutAnIsolatedLoaderFailsToLoad(t *testing.T) {
	d := newFakeDaemon()
	done := run(t, d, setup(t, isolatedAndNot, nil))
	d.input("b/y", "alive")
	d.stop()
	err := wait(t, done)
	if err == nil || !strings.Contains(err.Error(), `operator "a"`) || !strings.Contains(err.Error(), "cannot isolate") {
		t.Fatalf("Run = %v, want a's load failure", err)
	}
	if got, _, _ := d.snapshot(); len(got) != 1 {
		t.Errorf("b sent %v", got)
	}
}

// crashingLoader wraps operators so that their second input reports a
// crash (as the isolated loader does when its child dies) and, with
// restarted set, goes on.
type crashingLoader struct {
	inner     runtime.Loader
	restarted bool
}

type crashingOperator struct {
	runtime.Operator
	restarted bool
	inputs    int
}

func (l *crashingLoader) Load(ctx context.Context, spec runtime.OperatorSpec) (runtime.Operator, error) {
	op, err := l.inner.Load(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &crashingOperator{Operator: op, restarted: l.restarted}, nil
}

func (o *crashingOperator) OnEvent(ctx context.Context, ev *runtime.Event, out runtime.Sender) (runtime.Status, error) {
	if ev.Type == runtime.EventInput {
		o.inputs++
		if o.inputs == 2 {
			st := runtime.StatusStop
			if o.restarted {
				st = runtime.StatusContinue
			}
			return st, &runtime.OperatorError{Node: "rt", Operator: "a", Loader: "python", Phase: runtime.PhaseEvent,
				Err: fmt.Errorf("%w: killed by signal SIGSEGV", runtime.ErrOperatorCrashed)}
		}
	}
	return o.Operator.OnEvent(ctx, ev, out)
}

func TestACrashIsReportedWhetherOrNotTheOperatorGoesOn(t *testing.T) {
	for _, restarted := range []bool{false, true} {
		t.Run(fmt.Sprintf("restarted=%v", restarted), func(t *testing.T) {
			d := newFakeDaemon()
			cfg := setup(t, isolatedAndNot, nil)
			cfg.Isolated = &crashingLoader{inner: cfg.Loaders["python"], restarted: restarted}
			done := run(t, d, cfg)
			for i := 0; i < 3; i++ {
				d.input("a/x", fmt.Sprint(i))
			}
			d.input("b/y", "alive")
			d.stop()
			err := wait(t, done)
			if !errors.Is(err, runtime.ErrOperatorCrashed) || !strings.Contains(err.Error(), `operator "a"`) {
				t.Fatalf("Run = %v, want a's crash", err)
			}
			var ax int
			got, _, _ := d.snapshot()
			for _, s := range got {
				if s.id == "a/x" {
					ax++
				}
			}
			if want := map[bool]int{false: 1, true: 2}[restarted]; ax != want {
				t.Errorf("a sent %d outputs, want %d: %v", ax, want, got)
			}
		})
	}
}
