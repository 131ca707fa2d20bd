package wire

// Metadata travels with every message. Its byte layout is in PROTOCOL.md.
type Metadata struct {
	// Timestamp is the sender's wall clock at send time, in nanoseconds since
	// the Unix epoch.
	Timestamp uint64
	// OpenTelemetryContext is an opaque trace context propagated unchanged.
	OpenTelemetryContext string
	// Parameters are user key/value pairs; nil when there are none.
	Parameters map[string]Parameter
	// Type describes the Arrow array the data holds; nil means the data is
	// raw bytes (an Arrow uint8 array without nulls).
	Type *ArrayInfo
}

// ParamKind tags the value held by a Parameter.
type ParamKind uint8

const (
	ParamBool ParamKind = iota + 1
	ParamInt
	ParamFloat
	ParamString
	ParamIntList
	ParamFloatList
	ParamStringList
)

// Parameter is one metadata value. Only the field matching Kind is set.
type Parameter struct {
	Kind    ParamKind
	Bool    bool
	Int     int64
	Float   float64
	String  string
	Ints    []int64
	Floats  []float64
	Strings []string
}

// ArrayInfo is the layout of an Arrow array inside a message's data: the
// array's buffers are stored back to back in the data, each at an offset
// aligned to 8 bytes, and ArrayInfo says where each one is.
type ArrayInfo struct {
	// Format is the Arrow C data interface format string of the array's
	// type ("C" uint8, "L" uint64, "g" float64, "u" utf8, "+l" list, ...).
	Format    string
	Length    int64
	NullCount int64
	Offset    int64
	// Buffers in the order the Arrow columnar format defines for the type
	// (validity first). An absent buffer (no validity bitmap) has Absent set.
	Buffers  []BufferSpan
	Children []ArrayInfo
}

// BufferSpan locates one buffer inside the message data.
type BufferSpan struct {
	Offset uint64
	Len    uint64
	Absent bool
}
