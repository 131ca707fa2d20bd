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
	// Features lists optional parts of the protocol the node speaks;
	// encoded only when not zero, so nodes that know none send the
	// version 1 frame unchanged.
	Features uint32
}

// FeatureHandoff: the node hands small messages straight to waiting
// receivers and wants ROUTES before REGISTER_REPLY.
const FeatureHandoff uint32 = 1

// PutRegister encodes a whole REGISTER frame.
func (e *Encoder) PutRegister(r Register) []byte {
	e.Begin(KindRegister)
	e.U16(r.Version)
	e.Str(r.DataflowID)
	e.Str(r.NodeID)
	if r.Features != 0 {
		e.U32(r.Features)
	}
	return e.End(0)
}

// Register decodes the body of REGISTER.
func (d *Decoder) Register() (r Register, err error) {
	r = Register{Version: d.U16(), DataflowID: d.Str(), NodeID: d.Str()}
	if d.err == nil && d.off < len(d.f) {
		r.Features = d.U32()
	}
	return r, d.Done()
}

// Routes is the body of ROUTES: where a node's outputs go on its machine,
// for the hand-off (abi/PROTOCOL.md). The frame carries the hand-off table
// as its first descriptor, then one events socket per Direct output.
type Routes struct {
	// Self is the node's slot in the table, Slots the table's size.
	Self, Slots uint16
	Outputs     []OutputRoute
}

// OutputRoute is one output of a ROUTES frame.
type OutputRoute struct {
	OutputID string
	// Receivers are the slots of the local nodes the output feeds, each
	// once.
	Receivers []uint16
	// Direct says the output feeds exactly one input, Input of
	// Receivers[0], and nothing on other machines: its messages may be
	// handed off.
	Direct bool
	Input  string
}

// PutRoutes encodes a whole ROUTES frame carrying nfds descriptors.
func (e *Encoder) PutRoutes(r *Routes) []byte {
	e.Begin(KindRoutes)
	e.U16(r.Self)
	e.U16(r.Slots)
	e.U16(uint16(len(r.Outputs)))
	nfds := 1
	for _, o := range r.Outputs {
		e.Str(o.OutputID)
		e.U16(uint16(len(o.Receivers)))
		for _, s := range o.Receivers {
			e.U16(s)
		}
		e.Bool(o.Direct)
		if o.Direct {
			e.Str(o.Input)
			nfds++
		}
	}
	return e.End(nfds)
}

// Routes decodes the body of ROUTES and checks its slots against each
// other.
func (d *Decoder) Routes() (*Routes, error) {
	r := &Routes{Self: d.U16(), Slots: d.U16()}
	n := int(d.U16())
	if d.err == nil && (r.Slots == 0 || r.Self >= r.Slots) {
		d.fail(fmt.Sprintf("slot %d of %d", r.Self, r.Slots))
	}
	if d.err == nil && n*5 > len(d.f)-d.off {
		d.fail(fmt.Sprintf("%d outputs cannot fit", n))
	}
	for i := 0; i < n && d.err == nil; i++ {
		o := OutputRoute{OutputID: d.Str()}
		k := int(d.U16())
		if d.err == nil && k*2 > len(d.f)-d.off {
			d.fail(fmt.Sprintf("%d receivers cannot fit", k))
		}
		for j := 0; j < k && d.err == nil; j++ {
			s := d.U16()
			if s >= r.Slots {
				d.fail(fmt.Sprintf("receiver slot %d of %d", s, r.Slots))
			}
			o.Receivers = append(o.Receivers, s)
		}
		if o.Direct = d.Bool(); o.Direct {
			o.Input = d.Str()
			if d.err == nil && len(o.Receivers) != 1 {
				d.fail(fmt.Sprintf("direct output %q with %d receivers", o.OutputID, len(o.Receivers)))
			}
		}
		r.Outputs = append(r.Outputs, o)
	}
	if err := d.Done(); err != nil {
		return nil, err
	}
	return r, nil
}

// HandedOff is the body of HANDED_OFF: a sender handed a message in its
// region Data.Region to the receiver of OutputID itself, and tells the
// daemon so that the receiver's RELEASE finds the region.
type HandedOff struct {
	OutputID []byte
	Data     Data
}

// PutHandedOff encodes a whole HANDED_OFF frame; the region's descriptor
// travels with it the first time the daemon sees the region.
func (e *Encoder) PutHandedOff(outputID string, fdAttached bool, region, size, n uint64) []byte {
	e.Begin(KindHandedOff)
	e.Str(outputID)
	e.U8(uint8(DataShm))
	e.PutShm(fdAttached, region, size, n)
	nfds := 0
	if fdAttached {
		nfds = 1
	}
	return e.End(nfds)
}

// HandedOff decodes the body of HANDED_OFF.
func (d *Decoder) HandedOff(h *HandedOff) error {
	h.OutputID = d.StrBytes()
	d.Data(&h.Data)
	if d.err == nil && h.Data.Where != DataShm {
		d.fail("HANDED_OFF of data not in shared memory")
	}
	return d.Done()
}

// RegionKey is the daemon's key for region id of the node in slot: a
// sender that hands off a message in shared memory names the region as
// the daemon would. Keys of regions the daemon owns have bit 63 set.
func RegionKey(slot int, id uint64) uint64 { return uint64(slot+1)<<32 | id }

// MaxRegionID bounds a sender's region ids, so that they fit in RegionKey.
const MaxRegionID = 1<<32 - 1

// DirectCount is how many events sockets a ROUTES frame carries after
// the table.
func (r *Routes) DirectCount() int {
	n := 0
	for _, o := range r.Outputs {
		if o.Direct {
			n++
		}
	}
	return n
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
