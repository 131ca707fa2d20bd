package runtimetest

import (
	"context"

	"github.com/dora-go/dora/internal/osthread"
	"github.com/dora-go/dora/runtime"
)

// OnDedicatedThreads wraps a loader the way the runtime calls loaders: each
// operator's Load, OnEvent, Reload and Close run on one goroutine locked to
// its own OS thread, and specs say so (DedicatedThread). Run the
// conformance suite through it to test a loader's thread-bound path.
func OnDedicatedThreads(l runtime.Loader) runtime.Loader { return dedicatedLoader{l} }

type dedicatedLoader struct{ inner runtime.Loader }

type dedicatedOperator struct {
	thread *osthread.Thread
	op     runtime.Operator
}

func (l dedicatedLoader) Load(ctx context.Context, spec runtime.OperatorSpec) (runtime.Operator, error) {
	spec.DedicatedThread = true
	d := &dedicatedOperator{thread: osthread.Start()}
	var err error
	d.thread.Run(func() { d.op, err = l.inner.Load(ctx, spec) })
	if err != nil {
		d.thread.Stop()
		return nil, err
	}
	return d, nil
}

func (d *dedicatedOperator) OnEvent(ctx context.Context, ev *runtime.Event, out runtime.Sender) (st runtime.Status, err error) {
	d.thread.Run(func() { st, err = d.op.OnEvent(ctx, ev, out) })
	return st, err
}

func (d *dedicatedOperator) Reload(ctx context.Context, spec runtime.OperatorSpec) (err error) {
	r, ok := d.op.(runtime.Reloader)
	if !ok {
		return nil
	}
	spec.DedicatedThread = true
	d.thread.Run(func() { err = r.Reload(ctx, spec) })
	return err
}

func (d *dedicatedOperator) Close() (err error) {
	if d.thread == nil {
		return nil
	}
	d.thread.Run(func() { err = d.op.Close() })
	d.thread.Stop()
	d.thread = nil
	return err
}
