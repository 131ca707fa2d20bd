package isolated

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"testing"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/runtime"
)

// TestErrorsKeepTheirSentinels encodes errors as the child does and
// decodes them as the host does: errors.Is answers the same.
func TestErrorsKeepTheirSentinels(t *testing.T) {
	for _, tt := range []struct {
		err   error
		phase runtime.Phase
		is    []error
	}{
		{&runtime.OperatorError{Phase: runtime.PhaseLoad, Loader: "shared-library", Err: fmt.Errorf("%w: dora_on_event", runtime.ErrMissingSymbol)}, runtime.PhaseLoad, []error{runtime.ErrMissingSymbol}},
		{&runtime.OperatorError{Phase: runtime.PhaseEvent, Loader: "wasm", Err: fmt.Errorf("%w: unreachable", runtime.ErrTrap)}, runtime.PhaseEvent, []error{runtime.ErrTrap}},
		{&runtime.OperatorError{Phase: runtime.PhaseLoad, Err: fmt.Errorf("x.so: %w", os.ErrNotExist)}, runtime.PhaseLoad, []error{fs.ErrNotExist}},
		{fmt.Errorf("%w and %w", runtime.ErrTimeout, context.DeadlineExceeded), "", []error{runtime.ErrTimeout, context.DeadlineExceeded}},
		{errors.New("plain"), "", nil},
	} {
		var e wire.Encoder
		we, err := getReply(putReply(&e, tt.err))
		if err != nil || we == nil {
			t.Fatalf("%v: decoded %v, %v", tt.err, we, err)
		}
		if we.phase != tt.phase {
			t.Errorf("%v: phase %q, want %q", tt.err, we.phase, tt.phase)
		}
		for _, s := range tt.is {
			if !errors.Is(we.err, s) {
				t.Errorf("%v: lost %v", tt.err, s)
			}
		}
		for _, s := range causes {
			if errors.Is(we.err, s) && !errors.Is(tt.err, s) {
				t.Errorf("%v: gained %v", tt.err, s)
			}
		}
	}
	var e wire.Encoder
	if we, err := getReply(putReply(&e, nil)); we != nil || err != nil {
		t.Errorf("nil error decoded as %v, %v", we, err)
	}
}

func TestEventsAndOutputsRoundTrip(t *testing.T) {
	md := wire.Metadata{Timestamp: 42, OpenTelemetryContext: "trace", Parameters: map[string]wire.Parameter{"k": {Kind: wire.ParamInt, Int: -3}}}
	for _, ev := range []runtime.Event{
		{Type: runtime.EventInput, ID: "in", Data: []byte("payload"), Metadata: md},
		{Type: runtime.EventInput, ID: "empty", Metadata: md},
		{Type: runtime.EventError, Error: "upstream trouble"},
		{Type: runtime.EventStop},
	} {
		var e wire.Encoder
		d, err := expect(putEvent(&e, &ev, 0), kindEvent)
		if err != nil {
			t.Fatal(err)
		}
		var got runtime.Event
		ref, err := getEvent(d, &got)
		if err != nil {
			t.Fatal(err)
		}
		got.Data = ref.inline
		if !reflect.DeepEqual(got, ev) {
			t.Errorf("got %+v, want %+v", got, ev)
		}
	}
	var e wire.Encoder
	out := runtime.Output{ID: "big", Data: make([]byte, 1<<20), Metadata: md}
	d, _ := expect(putOutput(&e, &out, 7), kindOutput)
	var got runtime.Output
	ref, err := getOutput(d, &got)
	if err != nil || ref.region != 7 || ref.n != 1<<20 || ref.inline != nil || got.ID != "big" || got.Metadata.Timestamp != 42 {
		t.Errorf("region output decoded as %+v %+v, %v", ref, got, err)
	}
}

// FuzzDecodeFrames feeds every decoder the host and the child run on
// frames from the other side: none may panic or accept trailing bytes.
func FuzzDecodeFrames(f *testing.F) {
	var e wire.Encoder
	md := wire.Metadata{Timestamp: 1, Parameters: map[string]wire.Parameter{"a": {Kind: wire.ParamStringList, Strings: []string{"x"}}}}
	for _, b := range [][]byte{
		putEvent(&e, &runtime.Event{Type: runtime.EventInput, ID: "x", Data: []byte("abc"), Metadata: md}, 0),
		putEvent(&e, &runtime.Event{Type: runtime.EventInput, ID: "x", Data: make([]byte, 10)}, 3),
		putOutput(&e, &runtime.Output{ID: "o", Data: []byte("d")}, 0),
		putResult(&e, runtime.StatusStop, &runtime.OperatorError{Phase: runtime.PhaseEvent, Err: runtime.ErrTrap}),
		putSendResult(&e, errors.New("no")),
		putReply(&e, errors.New("bad")),
		putLoad(&e, kindLoad, &loadRequest{node: "n", path: "/p", workDir: "/w", operator: []byte(`{"id":"x"}`)}),
	} {
		f.Add(bytes.Clone(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, d, err := decodeFrame(b)
		if err != nil {
			return
		}
		switch k {
		case kindEvent:
			var ev runtime.Event
			getEvent(d, &ev)
		case kindOutput:
			var o runtime.Output
			getOutput(d, &o)
		case kindResult:
			getResult(d)
		case kindSendResult:
			d.LStr()
			d.Done()
		case kindReply:
			getReply(b)
		case kindLoad, kindReload:
			getLoad(d)
		}
	})
}
