package runtimetest

import (
	"context"
	goruntime "runtime"

	"github.com/dora-go/dora/runtime"
)

// OnDedicatedThreads wraps a loader the way the runtime calls loaders: each
// operator's Load, OnEvent, Reload and Close run on one goroutine locked to
// its own OS thread, and specs say so (DedicatedThread). Run the
// conformance suite through it to test a loader's thread-bound path.
func OnDedicatedThreads(l runtime.Loader) runtime.Loader { return dedicatedLoader{l} }

type dedicatedLoader struct{ inner runtime.Loader }

type dedicatedOperator struct {
	calls chan func()
	op    runtime.Operator
}

// thread starts an operator's thread; it runs calls until the channel closes.
func thread() chan func() {
	calls := make(chan func())
	go func() {
		goruntime.LockOSThread()
		for f := range calls {
			f()
		}
	}()
	return calls
}

// on runs f on the thread and waits for it.
func on(calls chan func(), f func()) {
	done := make(chan struct{})
	calls <- func() { f(); close(done) }
	<-done
}

func (l dedicatedLoader) Load(ctx context.Context, spec runtime.OperatorSpec) (runtime.Operator, error) {
	spec.DedicatedThread = true
	d := &dedicatedOperator{calls: thread()}
	var err error
	on(d.calls, func() { d.op, err = l.inner.Load(ctx, spec) })
	if err != nil {
		close(d.calls)
		return nil, err
	}
	return d, nil
}

func (d *dedicatedOperator) OnEvent(ctx context.Context, ev *runtime.Event, out runtime.Sender) (st runtime.Status, err error) {
	on(d.calls, func() { st, err = d.op.OnEvent(ctx, ev, out) })
	return st, err
}

func (d *dedicatedOperator) Reload(ctx context.Context, spec runtime.OperatorSpec) (err error) {
	r, ok := d.op.(runtime.Reloader)
	if !ok {
		return nil
	}
	spec.DedicatedThread = true
	on(d.calls, func() { err = r.Reload(ctx, spec) })
	return err
}

func (d *dedicatedOperator) Close() (err error) {
	if d.calls == nil {
		return nil
	}
	on(d.calls, func() { err = d.op.Close() })
	close(d.calls)
	d.calls = nil
	return err
}
