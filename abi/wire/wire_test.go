package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func sampleMetadata() Metadata {
	return Metadata{
		Timestamp:            1234567890123,
		OpenTelemetryContext: "traceparent=00-abc",
		Parameters: map[string]Parameter{
			"b":  {Kind: ParamBool, Bool: true},
			"i":  {Kind: ParamInt, Int: -42},
			"f":  {Kind: ParamFloat, Float: 2.5},
			"s":  {Kind: ParamString, String: "hello"},
			"il": {Kind: ParamIntList, Ints: []int64{1, 2, 3}},
			"fl": {Kind: ParamFloatList, Floats: []float64{0.5}},
			"sl": {Kind: ParamStringList, Strings: []string{"a", ""}},
		},
		Type: &ArrayInfo{Format: "+l", Length: 2, Buffers: []BufferSpan{{Absent: true}, {Offset: 0, Len: 12}},
			Children: []ArrayInfo{{Format: "L", Length: 3, Buffers: []BufferSpan{{Absent: true}, {Offset: 16, Len: 24}}}}},
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	for name, md := range map[string]Metadata{"empty": {}, "full": sampleMetadata()} {
		t.Run(name, func(t *testing.T) {
			var e Encoder
			e.Begin(KindSendOutput)
			e.PutMetadata(&md)
			f := e.End(0)
			d := NewDecoder(f)
			raw := d.SkipMetadata()
			if err := d.Done(); err != nil {
				t.Fatal(err)
			}
			var got Metadata
			if err := DecodeMetadata(raw, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, md) {
				t.Fatalf("got %+v\nwant %+v", got, md)
			}
		})
	}
}

func TestSendOutputRoundTrip(t *testing.T) {
	md := sampleMetadata()
	cases := map[string]Data{
		"none":   {Where: DataNone},
		"inline": {Where: DataInline, Inline: []byte("payload")},
		"shm":    {Where: DataShm, FDAttached: true, Region: 7, RegionSize: 1 << 20, Len: 4096000 / 4},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			var e Encoder
			e.PutSendOutputHeader("out", &md)
			e.PutData(&data)
			f := e.End(0)
			var s SendOutput
			if err := NewDecoder(f).SendOutput(&s); err != nil {
				t.Fatal(err)
			}
			if string(s.OutputID) != "out" || s.Data.Where != data.Where || !bytes.Equal(s.Data.Inline, data.Inline) ||
				s.Data.Region != data.Region || s.Data.Len != data.Len || s.Data.FDAttached != data.FDAttached {
				t.Fatalf("got %+v", s)
			}
			if data.Where == DataInline {
				if off := len(f) - len(data.Inline); off%8 != 0 {
					t.Errorf("inline data at frame offset %d, not 8-aligned", off)
				}
			}
		})
	}
}

func TestEventsRoundTrip(t *testing.T) {
	md := sampleMetadata()
	var me Encoder
	me.Begin(KindSendOutput)
	me.PutMetadata(&md)
	d0 := NewDecoder(me.End(0))
	raw := d0.SkipMetadata()

	var e Encoder
	e.BeginEvents()
	e.PutInputEvent("in", raw, &Data{Where: DataInline, Inline: []byte{1, 2, 3}})
	e.PutInputEvent("big", raw, &Data{Where: DataShm, Region: 9, RegionSize: 64, Len: 10})
	e.PutIDEvent(EventInputClosed, "in")
	e.PutErrorEvent("boom")
	e.PutUnmapEvent(9)
	e.PutStopEvent()
	f := e.EndEvents(6, 0)

	d := NewDecoder(f)
	if n := d.EventCount(); n != 6 {
		t.Fatalf("count %d", n)
	}
	var evs []Event
	for i := 0; i < 6; i++ {
		var ev Event
		if err := d.Event(&ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if err := d.Done(); err != nil {
		t.Fatal(err)
	}
	if string(evs[0].ID) != "in" || !bytes.Equal(evs[0].Data.Inline, []byte{1, 2, 3}) || !bytes.Equal(evs[0].Metadata, raw) {
		t.Errorf("input event %+v", evs[0])
	}
	if evs[1].Data.Region != 9 || evs[1].Data.Len != 10 {
		t.Errorf("shm event %+v", evs[1])
	}
	if evs[2].Type != EventInputClosed || string(evs[3].Message) != "boom" || evs[4].Region != 9 || evs[5].Type != EventStop {
		t.Errorf("events %+v", evs[2:])
	}
}

func TestSmallMessagesRoundTrip(t *testing.T) {
	var e Encoder
	r, err := NewDecoder(e.PutRegister(Register{Version: Version, DataflowID: "df", NodeID: "n"})).Register()
	if err != nil || r.NodeID != "n" || r.DataflowID != "df" || r.Version != Version {
		t.Errorf("register %+v %v", r, err)
	}
	e.Reset()
	if err := NewDecoder(e.PutRegisterReply("")).RegisterReply(); err != nil {
		t.Errorf("ok reply: %v", err)
	}
	e.Reset()
	if err := NewDecoder(e.PutRegisterReply("node x never connected")).RegisterReply(); err == nil || err.Error() != "node x never connected" {
		t.Errorf("error reply: %v", err)
	}
	e.Reset()
	regs, err := NewDecoder(e.PutRegions(KindRelease, []uint64{1, 2, 1 << 40})).Regions(nil)
	if err != nil || !reflect.DeepEqual(regs, []uint64{1, 2, 1 << 40}) {
		t.Errorf("regions %v %v", regs, err)
	}
	e.Reset()
	ss, err := NewDecoder(e.PutStrings(KindCloseOutputs, []string{"a", "b"})).Strings()
	if err != nil || !reflect.DeepEqual(ss, []string{"a", "b"}) {
		t.Errorf("strings %v %v", ss, err)
	}
	e.Reset()
	if n, err := NewDecoder(e.PutNextEvents(0)).NextEvents(); err == nil {
		t.Errorf("NEXT_EVENTS 0 accepted as %d", n)
	}
}

func TestRegisterFeatures(t *testing.T) {
	var e Encoder
	// Nodes that know no feature (the Python client) send the frame
	// without the field; it must decode as no feature.
	old := e.PutRegister(Register{Version: Version, DataflowID: "df", NodeID: "n"})
	if len(old) != HeaderSize+2+4+3 {
		t.Fatalf("REGISTER without features is %d bytes", len(old))
	}
	if r, err := NewDecoder(old).Register(); err != nil || r.Features != 0 {
		t.Errorf("without features: %+v %v", r, err)
	}
	e.Reset()
	r, err := NewDecoder(e.PutRegister(Register{Version: Version, DataflowID: "df", NodeID: "n", Features: FeatureHandoff})).Register()
	if err != nil || r.Features != FeatureHandoff || r.NodeID != "n" {
		t.Errorf("with features: %+v %v", r, err)
	}
}

func TestRoutesRoundTrip(t *testing.T) {
	want := &Routes{Self: 1, Slots: 4, Outputs: []OutputRoute{
		{OutputID: "fan", Receivers: []uint16{0, 2}},
		{OutputID: "one", Receivers: []uint16{3}, Direct: true, Input: "op/in"},
	}}
	var e Encoder
	f := e.PutRoutes(want)
	if f[5] != 2 || want.DirectCount() != 1 {
		t.Errorf("nfds %d, DirectCount %d: want the table and one socket", f[5], want.DirectCount())
	}
	got, err := NewDecoder(f).Routes()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestRoutesRejectsInconsistentSlots(t *testing.T) {
	for name, r := range map[string]*Routes{
		"self outside the table":     {Self: 4, Slots: 4},
		"empty table":                {Self: 0, Slots: 0},
		"receiver outside the table": {Slots: 4, Outputs: []OutputRoute{{OutputID: "o", Receivers: []uint16{4}}}},
		"direct to two receivers":    {Slots: 4, Outputs: []OutputRoute{{OutputID: "o", Receivers: []uint16{1, 2}, Direct: true, Input: "i"}}},
		"direct to no receiver":      {Slots: 4, Outputs: []OutputRoute{{OutputID: "o", Direct: true, Input: "i"}}},
	} {
		var e Encoder
		if _, err := NewDecoder(e.PutRoutes(r)).Routes(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestDecodersRejectTruncation(t *testing.T) {
	md := sampleMetadata()
	var e Encoder
	e.PutSendOutputHeader("out", &md)
	e.PutData(&Data{Where: DataInline, Inline: []byte("xyz")})
	f := e.End(0)
	for n := HeaderSize; n < len(f); n++ {
		cut := append([]byte(nil), f[:n]...)
		binary.LittleEndian.PutUint32(cut, uint32(n))
		var s SendOutput
		if err := NewDecoder(cut).SendOutput(&s); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d: err = %v", n, err)
		}
	}
}

func socketpair(t *testing.T) (*Conn, *Conn) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := NewConn(fds[0]), NewConn(fds[1])
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestConnCarriesFramesAndDescriptors(t *testing.T) {
	a, b := socketpair(t)
	f, err := os.CreateTemp(t.TempDir(), "fd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("through the socket")

	var e Encoder
	big := bytes.Repeat([]byte("x"), 200<<10)
	wrote := make(chan struct{})
	defer func() { <-wrote }()
	go func() {
		defer close(wrote)
		e.PutSendOutputHeader("small", &Metadata{})
		e.PutData(&Data{Where: DataInline, Inline: []byte("hi")})
		a.WriteFrame(e.End(0))
		e.Reset()
		e.PutSendOutputHeader("shm", &Metadata{})
		e.PutData(&Data{Where: DataShm, FDAttached: true, Region: 1, RegionSize: 18, Len: 18})
		a.WriteFrame(e.End(1), int(f.Fd()))
		e.Reset()
		e.PutSendOutputHeader("big", &Metadata{})
		e.PutData(&Data{Where: DataInline, Inline: big})
		a.WriteFrame(e.End(0))
		a.Shutdown()
	}()
	var s SendOutput
	for i, want := range []string{"small", "shm", "big"} {
		fr, fds, err := b.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if err := NewDecoder(fr).SendOutput(&s); err != nil || string(s.OutputID) != want {
			t.Fatalf("frame %d: %q %v", i, s.OutputID, err)
		}
		switch want {
		case "shm":
			if len(fds) != 1 {
				t.Fatalf("got %d fds", len(fds))
			}
			buf := make([]byte, 18)
			if _, err := unix.Pread(fds[0], buf, 0); err != nil || string(buf) != "through the socket" {
				t.Fatalf("passed fd reads %q %v", buf, err)
			}
			unix.Close(fds[0])
		case "big":
			if !bytes.Equal(s.Data.Inline, big) {
				t.Fatal("big frame corrupted")
			}
		}
	}
	if _, _, err := b.ReadFrame(); err != io.EOF {
		t.Fatalf("after shutdown: %v, want EOF", err)
	}
}

func TestConnRejectsHostileLengths(t *testing.T) {
	for _, n := range []uint32{0, 7, MaxFrame + 1} {
		a, b := socketpair(t)
		hdr := make([]byte, 8)
		binary.LittleEndian.PutUint32(hdr, n)
		a.WriteFrame(hdr)
		if _, _, err := b.ReadFrame(); !errors.Is(err, ErrMalformed) {
			t.Errorf("length %d: err = %v", n, err)
		}
	}
}

// FuzzDecode feeds arbitrary bodies to every decoder: none may panic or
// allocate without bound.
func FuzzDecode(f *testing.F) {
	md := sampleMetadata()
	var e Encoder
	e.PutSendOutputHeader("out", &md)
	e.PutData(&Data{Where: DataInline, Inline: []byte("abc")})
	f.Add(e.End(0)[HeaderSize:])
	e.Reset()
	e.BeginEvents()
	e.PutInputEvent("in", nil, &Data{Where: DataShm, Region: 1, RegionSize: 8, Len: 8})
	e.PutStopEvent()
	f.Add(e.EndEvents(2, 0)[HeaderSize:])
	e.Reset()
	f.Add(e.PutRoutes(&Routes{Self: 1, Slots: 3, Outputs: []OutputRoute{{OutputID: "o", Receivers: []uint16{2}, Direct: true, Input: "i"}}})[HeaderSize:])
	f.Fuzz(func(t *testing.T, body []byte) {
		frame := append(make([]byte, HeaderSize), body...)
		binary.LittleEndian.PutUint32(frame, uint32(len(frame)))
		var s SendOutput
		_ = NewDecoder(frame).SendOutput(&s)
		if s.Metadata != nil {
			var md Metadata
			_ = DecodeMetadata(s.Metadata, &md)
		}
		_, _ = NewDecoder(frame).Register()
		_, _ = NewDecoder(frame).Strings()
		_, _ = NewDecoder(frame).Regions(nil)
		_ = NewDecoder(frame).RegisterReply()
		_, _ = NewDecoder(frame).NextEvents()
		_, _ = NewDecoder(frame).Routes()
		d := NewDecoder(frame)
		n := d.EventCount()
		var ev Event
		for i := 0; i < n && d.Event(&ev) == nil; i++ {
			if ev.Metadata != nil {
				var md Metadata
				_ = DecodeMetadata(ev.Metadata, &md)
			}
		}
	})
}

func TestWriteTimeoutOnAFullSocket(t *testing.T) {
	a, _ := socketpair(t)
	if err := a.SetWriteTimeout(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 1<<20)
	binary.LittleEndian.PutUint32(frame, uint32(len(frame)))
	var err error
	for i := 0; i < 64 && err == nil; i++ { // nobody reads: the buffer fills
		err = a.WriteFrame(frame)
	}
	if !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("writing to a full socket: %v, want EAGAIN after the timeout", err)
	}
}
