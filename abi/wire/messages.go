package wire

import "fmt"

// ResetBody makes d decode b, which is not a whole frame (metadata bytes
// kept apart from their frame, for instance).
func (d *Decoder) ResetBody(b []byte) { d.f, d.off, d.err = b, 0, nil }

// DecodeMetadata decodes metadata bytes as SkipMetadata returned them.
func DecodeMetadata(b []byte, md *Metadata) error {
	var d Decoder
	d.ResetBody(b)
	d.Metadata(md)
	return d.Done()
}

// Register is the body of REGISTER.
type Register struct {
	Version    uint16
	DataflowID string
	NodeID     string
}

// PutRegister encodes a whole REGISTER frame.
func (e *Encoder) PutRegister(r Register) []byte {
	e.Begin(KindRegister)
	e.U16(r.Version)
	e.Str(r.DataflowID)
	e.Str(r.NodeID)
	return e.End(0)
}

// Register decodes the body of REGISTER.
func (d *Decoder) Register() (r Register, err error) {
	r = Register{Version: d.U16(), DataflowID: d.Str(), NodeID: d.Str()}
	return r, d.Done()
}

// SendOutput is the body of SEND_OUTPUT, as views into its frame.
type SendOutput struct {
	OutputID []byte
	// Metadata holds the encoded metadata, checked but not decoded, so the
	// daemon can forward it without allocating.
	Metadata []byte
	Data     Data
}

// PutSendOutputHeader starts a SEND_OUTPUT frame up to its data, which the
// caller appends with PutData, or PutInlineHeader and the bytes.
func (e *Encoder) PutSendOutputHeader(outputID string, md *Metadata) {
	e.Begin(KindSendOutput)
	e.Str(outputID)
	e.PutMetadata(md)
}

// SendOutput decodes the body of SEND_OUTPUT.
func (d *Decoder) SendOutput(s *SendOutput) error {
	s.OutputID = d.StrBytes()
	s.Metadata = d.SkipMetadata()
	d.Data(&s.Data)
	return d.Done()
}

// PutStrings encodes a frame whose body is a u16 count of strings.
func (e *Encoder) PutStrings(k Kind, ss []string) []byte {
	e.Begin(k)
	e.U16(uint16(len(ss)))
	for _, s := range ss {
		e.Str(s)
	}
	return e.End(0)
}

// Strings decodes a u16-counted list of strings.
func (d *Decoder) Strings() ([]string, error) {
	n := int(d.U16())
	if n*2 > len(d.f)-d.off {
		d.fail(fmt.Sprintf("%d strings cannot fit", n))
	}
	ss := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		ss = append(ss, d.Str())
	}
	return ss, d.Done()
}

// PutRegions encodes RELEASE, DROP_REGIONS or RELEASED.
func (e *Encoder) PutRegions(k Kind, regions []uint64) []byte {
	e.Begin(k)
	e.U32(uint32(len(regions)))
	for _, r := range regions {
		e.U64(r)
	}
	return e.End(0)
}

// Regions decodes a region list into dst[:0].
func (d *Decoder) Regions(dst []uint64) ([]uint64, error) {
	n := d.Count(8)
	dst = dst[:0]
	for i := 0; i < n; i++ {
		dst = append(dst, d.U64())
	}
	return dst, d.Done()
}

// PutMessage encodes a frame whose body is one lstr (STOP_DATAFLOW).
func (e *Encoder) PutMessage(k Kind, msg string) []byte {
	e.Begin(k)
	e.LStr(msg)
	return e.End(0)
}

// Message decodes a one-lstr body.
func (d *Decoder) Message() (string, error) {
	s := d.LStr()
	return s, d.Done()
}

// PutRegisterReply encodes REGISTER_REPLY; an empty errMsg means success.
func (e *Encoder) PutRegisterReply(errMsg string) []byte {
	e.Begin(KindRegisterReply)
	e.Bool(errMsg == "")
	e.LStr(errMsg)
	return e.End(0)
}

// RegisterReply decodes REGISTER_REPLY into an error, nil on success.
func (d *Decoder) RegisterReply() error {
	ok := d.Bool()
	msg := d.LStr()
	if err := d.Done(); err != nil {
		return err
	}
	if !ok {
		if msg == "" {
			msg = "the daemon refused the node"
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// PutNextEvents encodes NEXT_EVENTS.
func (e *Encoder) PutNextEvents(max uint32) []byte {
	e.Begin(KindNextEvents)
	e.U32(max)
	return e.End(0)
}

// NextEvents decodes NEXT_EVENTS.
func (d *Decoder) NextEvents() (uint32, error) {
	n := d.U32()
	if err := d.Done(); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: NEXT_EVENTS asks for 0 events", ErrMalformed)
	}
	return n, nil
}

// EventType tags one event inside EVENTS.
type EventType uint8

const (
	EventInput       EventType = 1
	EventInputClosed EventType = 2
	EventStop        EventType = 3
	EventError       EventType = 4
	EventUnmap       EventType = 5
)

// Event is one decoded event, as views into its frame.
type Event struct {
	Type     EventType
	ID       []byte
	Metadata []byte
	Data     Data
	Message  []byte
	Region   uint64
}

// BeginEvents starts an EVENTS frame; n is patched by EndEvents.
func (e *Encoder) BeginEvents() {
	e.Begin(KindEvents)
	e.U32(0)
}

// EndEvents completes an EVENTS frame holding n events.
func (e *Encoder) EndEvents(n, nfds int) []byte {
	f := e.End(nfds)
	f[HeaderSize], f[HeaderSize+1], f[HeaderSize+2], f[HeaderSize+3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return f
}

// PutInputEvent appends an INPUT event whose metadata is already encoded.
func (e *Encoder) PutInputEvent(inputID string, metadata []byte, data *Data) {
	e.U8(uint8(EventInput))
	e.Str(inputID)
	e.Raw(metadata)
	e.PutData(data)
}

// PutIDEvent appends INPUT_CLOSED.
func (e *Encoder) PutIDEvent(t EventType, id string) {
	e.U8(uint8(t))
	e.Str(id)
}

// PutStopEvent appends STOP.
func (e *Encoder) PutStopEvent() { e.U8(uint8(EventStop)) }

// PutErrorEvent appends ERROR.
func (e *Encoder) PutErrorEvent(msg string) {
	e.U8(uint8(EventError))
	e.LStr(msg)
}

// PutUnmapEvent appends UNMAP.
func (e *Encoder) PutUnmapEvent(region uint64) {
	e.U8(uint8(EventUnmap))
	e.U64(region)
}

// EventCount reads the count that starts an EVENTS body.
func (d *Decoder) EventCount() int { return d.Count(1) }

// Event decodes the next event of an EVENTS body.
func (d *Decoder) Event(ev *Event) error {
	*ev = Event{Type: EventType(d.U8())}
	switch ev.Type {
	case EventInput:
		ev.ID = d.StrBytes()
		ev.Metadata = d.SkipMetadata()
		d.Data(&ev.Data)
	case EventInputClosed:
		ev.ID = d.StrBytes()
	case EventStop:
	case EventError:
		ev.Message = d.LStrBytes()
	case EventUnmap:
		ev.Region = d.U64()
	default:
		d.fail(fmt.Sprintf("event type %d", ev.Type))
	}
	return d.err
}
