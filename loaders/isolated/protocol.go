package isolated

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/runtime"
)

// The protocol between a runtime node (the host) and an operator host
// (the child) is described byte by byte in abi/ISOLATION.md; this file is
// its encoding. Keep the two in step.

// ProtocolVersion is go-plugin's application protocol version: the host
// offers it in PLUGIN_PROTOCOL_VERSIONS and the child answers it in its
// handshake line. Bump it with any change to the frames below.
const ProtocolVersion = 1

// Handshake is the go-plugin handshake both sides use. The magic cookie is
// not a secret: it only tells a user who runs `dora operator-host` by hand
// that it is not a command for people.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "DORA_OPERATOR_HOST_COOKIE",
	MagicCookieValue: "d0a1-operator-host-3f5c9e1b",
}

// pluginName is the only plugin of the set: one transport (gRPC), never
// mixed (go-plugin picks the transport from the first plugin it meets).
const pluginName = "operator"

// Descriptors the child inherits besides stdin, stdout and stderr.
const (
	// fdRegions is the child's end of an AF_UNIX SOCK_SEQPACKET pair that
	// carries shared-memory regions (memfds) in both directions.
	fdRegions = 3
	// fdStdout and fdStderr are pipes the child moves onto its fds 1 and
	// 2, so the operator's own output reaches the host's forwarders;
	// go-plugin keeps the original 1 (handshake) and 2 (JSON logs).
	fdStdout = 4
	fdStderr = 5
)

// inlineMax is the first payload size that travels in a shared-memory
// region instead of inside a frame.
const inlineMax = 64 << 10

// maxFrame bounds a frame, and so a gRPC message.
const maxFrame = wire.MaxFrame

// Frame kinds. Frames use the header and field encodings of
// abi/PROTOCOL.md (u32 length, u8 kind, u8 nfds = 0, u16 reserved = 0).
const (
	kindLoad       wire.Kind = 1  // host → child, Load
	kindReload     wire.Kind = 2  // host → child, Reload
	kindClose      wire.Kind = 3  // host → child, Close
	kindEvent      wire.Kind = 16 // host → child, Events stream
	kindSendResult wire.Kind = 17 // host → child, Events stream
	kindReply      wire.Kind = 65 // child → host, answer to Load, Reload, Close
	kindOutput     wire.Kind = 80 // child → host, Events stream
	kindResult     wire.Kind = 81 // child → host, Events stream
)

// Where the data of an EVENT or OUTPUT is.
const (
	dataNone   = 0
	dataInline = 1
	dataRegion = 2
)

// causes lists the sentinels an error keeps across the process boundary,
// by bit: errors.Is on the host answers as it would have in the child.
var causes = []error{
	runtime.ErrMissingSymbol,   // 1 << 0
	runtime.ErrTrap,            // 1 << 1
	runtime.ErrTimeout,         // 1 << 2
	runtime.ErrPythonException, // 1 << 3
	runtime.ErrPanic,           // 1 << 4
	runtime.ErrOperatorError,   // 1 << 5
	runtime.ErrOperatorCrashed, // 1 << 6
	context.Canceled,           // 1 << 7
	context.DeadlineExceeded,   // 1 << 8
	fs.ErrNotExist,             // 1 << 9
}

func causeBits(err error) uint32 {
	var bits uint32
	for i, c := range causes {
		if errors.Is(err, c) {
			bits |= 1 << i
		}
	}
	return bits
}

// remoteError is an error that crossed from the child: its text and the
// sentinels it wrapped.
type remoteError struct {
	msg  string
	bits uint32
}

func (e *remoteError) Error() string { return e.msg }

func (e *remoteError) Is(target error) bool {
	for i, c := range causes {
		if e.bits&(1<<i) != 0 && target == c {
			return true
		}
	}
	return false
}

// wireError is an error as it travels: the phase and loader of an
// *runtime.OperatorError (empty for other errors) and the cause.
type wireError struct {
	phase  runtime.Phase
	loader descriptor.SourceKind
	err    error
}

// putError appends `u8 present` and, when present, `str phase`,
// `str loader`, `u32 causes`, `lstr message`.
func putError(e *wire.Encoder, err error) {
	if err == nil {
		e.U8(0)
		return
	}
	e.U8(1)
	var oe *runtime.OperatorError
	cause := err
	if errors.As(err, &oe) {
		e.Str(string(oe.Phase))
		e.Str(string(oe.Loader))
		cause = oe.Err
	} else {
		e.Str("")
		e.Str("")
	}
	e.U32(causeBits(err))
	e.LStr(errText(cause))
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

func getError(d *wire.Decoder) *wireError {
	if !d.Bool() {
		return nil
	}
	we := &wireError{phase: runtime.Phase(d.Str()), loader: descriptor.SourceKind(d.Str())}
	bits := d.U32()
	we.err = &remoteError{msg: d.LStr(), bits: bits}
	if d.Err() != nil {
		return nil
	}
	return we
}

// frame starts a frame of kind k in e, which is reset.
func frame(e *wire.Encoder, k wire.Kind) {
	e.Reset()
	e.Begin(k)
}

// decodeFrame checks a frame's header and returns its kind and a decoder
// positioned on its body.
func decodeFrame(b []byte) (wire.Kind, *wire.Decoder, error) {
	if len(b) < wire.HeaderSize {
		return 0, nil, fmt.Errorf("%w: %d bytes, shorter than a header", wire.ErrMalformed, len(b))
	}
	n := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	switch {
	case int(n) != len(b):
		return 0, nil, fmt.Errorf("%w: header says %d bytes, message has %d", wire.ErrMalformed, n, len(b))
	case b[5] != 0:
		return 0, nil, fmt.Errorf("%w: frame claims %d descriptors", wire.ErrMalformed, b[5])
	case b[6] != 0 || b[7] != 0:
		return 0, nil, fmt.Errorf("%w: reserved header bytes are not zero", wire.ErrMalformed)
	}
	return wire.Kind(b[4]), wire.NewDecoder(b), nil
}

// expect decodes a frame that must be of kind want.
func expect(b []byte, want wire.Kind) (*wire.Decoder, error) {
	k, d, err := decodeFrame(b)
	if err != nil {
		return nil, err
	}
	if k != want {
		return nil, fmt.Errorf("%w: got frame kind %d, want %d", wire.ErrMalformed, k, want)
	}
	return d, nil
}

// loadRequest is the body of LOAD and RELOAD.
type loadRequest struct {
	node, path, workDir string
	operator            []byte // descriptor.Operator as JSON
}

func putLoad(e *wire.Encoder, k wire.Kind, r *loadRequest) []byte {
	frame(e, k)
	e.U16(ProtocolVersion)
	e.Str(r.node)
	e.LStr(r.path)
	e.LStr(r.workDir)
	e.LStr(string(r.operator))
	return e.End(0)
}

func getLoad(d *wire.Decoder) (*loadRequest, error) {
	if v := d.U16(); d.Err() == nil && v != ProtocolVersion {
		return nil, fmt.Errorf("%w: protocol version %d, want %d", wire.ErrMalformed, v, ProtocolVersion)
	}
	r := &loadRequest{node: d.Str(), path: d.LStr(), workDir: d.LStr(), operator: d.LStrBytes()}
	if err := d.Done(); err != nil {
		return nil, err
	}
	return r, nil
}

// putData appends data inline, or as a reference to region.
func putData(e *wire.Encoder, data []byte, region uint64) {
	switch {
	case region != 0:
		e.U8(dataRegion)
		e.U64(region)
		e.U64(uint64(len(data)))
	case len(data) == 0:
		e.U8(dataNone)
	default:
		e.U8(dataInline)
		e.U32(uint32(len(data)))
		e.Raw(data)
	}
}

// dataRef is decoded data: inline bytes (a view into the frame) or a
// region reference the caller resolves.
type dataRef struct {
	inline []byte
	region uint64
	n      uint64
}

func getData(d *wire.Decoder) (dataRef, error) {
	switch w := d.U8(); w {
	case dataNone:
		return dataRef{}, nil
	case dataInline:
		return dataRef{inline: d.LStrBytes()}, nil
	case dataRegion:
		r := dataRef{region: d.U64(), n: d.U64()}
		if d.Err() == nil && (r.region == 0 || r.n == 0) {
			return dataRef{}, fmt.Errorf("%w: region %d, %d bytes", wire.ErrMalformed, r.region, r.n)
		}
		return r, nil
	default:
		return dataRef{}, fmt.Errorf("%w: data location %d", wire.ErrMalformed, w)
	}
}

// putEvent encodes an EVENT: `u8 type`, `str input_id`, `lstr error`,
// metadata, data.
func putEvent(e *wire.Encoder, ev *runtime.Event, region uint64) []byte {
	frame(e, kindEvent)
	e.U8(uint8(ev.Type))
	e.Str(ev.ID)
	e.LStr(ev.Error)
	e.PutMetadata(&ev.Metadata)
	putData(e, ev.Data, region)
	return e.End(0)
}

func getEvent(d *wire.Decoder, ev *runtime.Event) (dataRef, error) {
	ev.Type = runtime.EventType(d.U8())
	ev.ID = d.Str()
	ev.Error = d.LStr()
	d.Metadata(&ev.Metadata)
	ref, err := getData(d)
	if derr := d.Done(); derr != nil {
		return dataRef{}, derr
	}
	if err != nil {
		return dataRef{}, err
	}
	if ev.Type < runtime.EventInput || ev.Type > runtime.EventError {
		return dataRef{}, fmt.Errorf("%w: event type %d", wire.ErrMalformed, ev.Type)
	}
	return ref, nil
}

// putOutput encodes an OUTPUT: `str output_id`, metadata, data.
func putOutput(e *wire.Encoder, out *runtime.Output, region uint64) []byte {
	frame(e, kindOutput)
	e.Str(out.ID)
	e.PutMetadata(&out.Metadata)
	putData(e, out.Data, region)
	return e.End(0)
}

func getOutput(d *wire.Decoder, out *runtime.Output) (dataRef, error) {
	out.ID = d.Str()
	d.Metadata(&out.Metadata)
	ref, err := getData(d)
	if derr := d.Done(); derr != nil {
		return dataRef{}, derr
	}
	return ref, err
}

// putSendResult encodes a SEND_RESULT: `lstr error`, empty when the send
// succeeded.
func putSendResult(e *wire.Encoder, err error) []byte {
	frame(e, kindSendResult)
	if err != nil {
		e.LStr(errText(err))
	} else {
		e.LStr("")
	}
	return e.End(0)
}

// putResult encodes a RESULT: `i32 status`, error.
func putResult(e *wire.Encoder, st runtime.Status, err error) []byte {
	frame(e, kindResult)
	e.U32(uint32(st))
	putError(e, err)
	return e.End(0)
}

func getResult(d *wire.Decoder) (runtime.Status, *wireError, error) {
	st := runtime.Status(int32(d.U32()))
	we := getError(d)
	return st, we, d.Done()
}

// putReply encodes a REPLY: error.
func putReply(e *wire.Encoder, err error) []byte {
	frame(e, kindReply)
	putError(e, err)
	return e.End(0)
}

func getReply(b []byte) (*wireError, error) {
	d, err := expect(b, kindReply)
	if err != nil {
		return nil, err
	}
	we := getError(d)
	return we, d.Done()
}

// The gRPC service. There is no .proto file and no generated code: every
// method takes and returns one google.protobuf.BytesValue holding one
// frame, and the service is described by hand.
const serviceName = "dora.isolated.v1.OperatorHost"

const (
	methodLoad   = "/" + serviceName + "/Load"
	methodReload = "/" + serviceName + "/Reload"
	methodClose  = "/" + serviceName + "/Close"
	methodEvents = "/" + serviceName + "/Events"
)

// hostService is what the child implements.
type hostService interface {
	unary(ctx context.Context, k wire.Kind, req []byte) []byte
	events(stream grpc.ServerStream) error
}

func unaryHandler(k wire.Kind) func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.BytesValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		return wrapperspb.Bytes(srv.(hostService).unary(ctx, k, in.Value)), nil
	}
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*hostService)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Load", Handler: unaryHandler(kindLoad)},
		{MethodName: "Reload", Handler: unaryHandler(kindReload)},
		{MethodName: "Close", Handler: unaryHandler(kindClose)},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Events",
		Handler:       func(srv any, stream grpc.ServerStream) error { return srv.(hostService).events(stream) },
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "abi/ISOLATION.md",
}

// operatorPlugin is the go-plugin plugin: the child registers the service,
// the host gets the connection.
type operatorPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv hostService // child side only
}

var _ plugin.GRPCPlugin = (*operatorPlugin)(nil)

func (p *operatorPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&serviceDesc, p.srv)
	return nil
}

func (p *operatorPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return cc, nil
}

// grpcServer makes the child's gRPC server, accepting frames up to
// maxFrame.
func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.MaxRecvMsgSize(maxFrame+64), grpc.MaxSendMsgSize(math.MaxInt32))
	return grpc.NewServer(opts...)
}
