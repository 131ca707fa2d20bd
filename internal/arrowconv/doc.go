// Package arrowconv stores Arrow arrays in message data and reads them back
// without copying.
//
// # Layout
//
// A message's data is the concatenation of one array's buffers, described by
// a wire.ArrayInfo tree: one node per array (the root, then list elements
// and struct fields as Children), each node naming its type with an Arrow C
// data interface format string and locating its buffers with
// wire.BufferSpan values. Buffers appear in the order the Arrow columnar format
// gives for the type, validity bitmap first:
//
//	type                          buffers                         children
//	null "n"                      (none)                          0
//	bool "b"                      validity, value bitmap          0
//	fixed width: ints, floats,    validity, values                0
//	  dates, times, timestamps,
//	  durations, intervals,
//	  decimals, "w:N"
//	utf8/binary "u" "z"           validity, int32 offsets, data   0
//	large utf8/binary "U" "Z"     validity, int64 offsets, data   0
//	list "+l", large list "+L"    validity, int32/int64 offsets   1
//	fixed-size list "+w:N"        validity                        1
//	struct "+s"                   validity                        any
//
// A nil ArrayInfo means raw bytes: a uint8 array without nulls over the whole
// data ([ReadRaw]).
//
// # Alignment and size
//
// [Write] places buffer i at an offset (from the start of dst) that is a
// multiple of 8, and zeroes the padding after each buffer, so Size is the sum
// of every buffer length rounded up to 8. [Read] rejects spans whose offset is
// not a multiple of 8. When data itself starts on an 8-byte boundary, as a
// shared-memory mapping does, every buffer is therefore naturally aligned for
// its element type. Read does not check the alignment of data's base address
// and never copies to fix it: Go's 64-bit targets load unaligned values
// correctly.
//
// # Offsets (slices)
//
// Write normalises: it copies only the part of each buffer a sliced array
// covers and always writes Offset 0. Validity and boolean bitmaps are
// re-based with bitutil.CopyBitmap, string/binary and list offsets are
// rewritten to start at 0, and list/struct children are sliced to the range
// the parent uses. A one-element slice of a 4 MiB array therefore costs a few
// bytes, not 4 MiB. A validity bitmap is written only when the (slice of the)
// array has nulls; otherwise the span is Absent.
//
// Read accepts any Offset (other producers may keep one) and checks every
// buffer against Offset+Length.
//
// # Field names
//
// wire.ArrayInfo carries no field names or nullability (the C data interface
// keeps those in ArrowSchema.name and .flags, which has no counterpart here).
// Read names list elements "item" (as arrow.ListOf does) and struct fields
// "f0", "f1", ... in order, and marks every child nullable. Carrying the
// real names needs a field in wire.ArrayInfo (for example Name string);
// until then a sender that needs them sends them out of band (for example as
// metadata parameters) and the receiver renames.
//
// # Hostile input
//
// Data may come from another process. Read validates the whole tree before
// building anything: nesting depth (at most [MaxDepth] levels), format
// strings, lengths and offsets (non-negative, no overflow), null counts
// (checked against the bitmap), buffer counts per type, spans inside data,
// buffer sizes against Offset+Length, child counts and lengths, and that
// string/binary/list offsets are non-decreasing and inside their data or
// child. It returns an error wrapping [ErrInvalid] or [ErrUnsupported] and
// never panics. It does not check that utf8 data is valid UTF-8 (Go strings
// may hold any bytes) and does not reject overlapping spans (data is only
// read).
//
// # Lifetime
//
// The array Read returns aliases data. data must stay mapped and unmodified
// until the array, and every slice or child taken from it, is no longer used.
// Releasing the array frees nothing: its buffers have no allocator.
package arrowconv
