package wasmguest

import (
	"reflect"
	"testing"

	wasmabi "github.com/dora-go/dora/abi/wasm"
)

type recorder struct{ ids []string }

func (r *recorder) Send(id string, data []byte) error { r.ids = append(r.ids, id); return nil }
func (r *recorder) SendWithMetadata(id string, data []byte, md *Metadata) error {
	return r.Send(id, data)
}

// An operator's logic runs natively, with a fake Sender.
func TestOperatorRunsNatively(t *testing.T) {
	op := OperatorFunc(func(ev Event, out Sender) (Status, error) {
		if ev.Type == Input {
			return Continue, out.Send(ev.ID, ev.Data)
		}
		return Stop, nil
	})
	t.Cleanup(func() { registered = nil }) // a program registers once; a test binary may run this again
	Register(op)
	if Registered() == nil {
		t.Fatal("Registered() = nil after Register")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a second Register did not panic")
			}
		}()
		Register(op)
	}()

	var rec recorder
	if st, err := Registered().OnEvent(Event{Type: Input, ID: "a", Data: []byte("x")}, &rec); st != Continue || err != nil {
		t.Fatalf("OnEvent = %v, %v", st, err)
	}
	if st, _ := Registered().OnEvent(Event{Type: StopEvent}, &rec); st != Stop {
		t.Errorf("stop: status %v", st)
	}
	if !reflect.DeepEqual(rec.ids, []string{"a"}) {
		t.Errorf("sent %v", rec.ids)
	}
}

func TestEventMetadata(t *testing.T) {
	md := Metadata{Timestamp: 42, Type: &ArrayInfo{Format: "C", Length: 1, Buffers: []BufferSpan{{Absent: true}, {Len: 1}}}}
	ev := Event{Type: Input, RawMetadata: wasmabi.AppendMetadata(nil, &md)}
	if ev.Timestamp() != 42 {
		t.Errorf("Timestamp = %d", ev.Timestamp())
	}
	got, err := ev.Metadata()
	if err != nil || !reflect.DeepEqual(got, md) {
		t.Errorf("Metadata = %+v, %v", got, err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = ev.Timestamp() }); n != 0 {
		t.Errorf("Timestamp allocates %v times", n)
	}
	var empty Event
	if got, err := empty.Metadata(); err != nil || got.Timestamp != 0 {
		t.Errorf("empty Metadata = %+v, %v", got, err)
	}
}

func TestStatusAndKindValuesMatchTheABI(t *testing.T) {
	if Continue != 0 || Stop != 1 || StopAll != 2 || Input != 1 || InputClosed != 2 || StopEvent != 3 || ErrorEvent != 4 {
		t.Fatal("status or event kind values drifted from abi/wasm")
	}
	if Input.String() != "INPUT" || ErrorEvent.String() != "ERROR" {
		t.Error("EventType.String")
	}
}
