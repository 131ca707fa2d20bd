package isolated

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dora-go/dora/shm"
)

// Shared-memory regions between host and child. Each side owns the
// regions it writes (the host: inputs; the child: outputs), keeps one per
// direction, and replaces it by a bigger one when a payload does not fit.
// A new region travels as a memfd over the regions socket before the first
// frame that refers to it; the reader maps it read-only, once, and keeps
// it until the next region of that direction arrives.
//
// A memfd shared with an untrusted process could be shrunk by it, and the
// other side would then die of SIGBUS touching the lost pages. Regions are
// therefore sealed (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) before they
// are sent, and a reader refuses a region without F_SEAL_SHRINK or smaller
// than announced.

// Roles say which way a region's data goes.
const (
	roleInput  = 1 // host writes, child reads
	roleOutput = 2 // child writes, host reads
)

// regionMsgSize is the size of a REGION message on the regions socket:
// `u8 kind = 1`, `u8 role`, `u16 reserved`, `u32 reserved`, `u64 id`,
// `u64 size`, with exactly one descriptor attached.
const regionMsgSize = 24

// maxRegion bounds a region a reader accepts.
const maxRegion = 1 << 34

// regionWait bounds how long a reader waits for a region a frame refers
// to; a live peer sends it before the frame, so it is there already.
const regionWait = 5 * time.Second

var errRegions = errors.New("shared-memory region")

// sealedRegion is a region this side writes.
type sealedRegion struct {
	id  uint64
	mem []byte
}

// regionWriter owns this side's current region of one role.
type regionWriter struct {
	sock   int
	role   byte
	name   string
	nextID uint64
	cur    *sealedRegion
}

// ensure returns a region of at least n bytes, creating and announcing a
// new one (and unmapping the old one) when the current one is too small.
func (w *regionWriter) ensure(n int) (*sealedRegion, error) {
	if w.cur != nil && len(w.cur.mem) >= n {
		return w.cur, nil
	}
	size := shm.SizeFor(n)
	fd, mem, err := newSealed(w.name, size)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	w.nextID++
	r := &sealedRegion{id: w.nextID, mem: mem}
	var msg [regionMsgSize]byte
	msg[0], msg[1] = 1, w.role
	binary.LittleEndian.PutUint64(msg[8:], r.id)
	binary.LittleEndian.PutUint64(msg[16:], uint64(size))
	if err := unix.Sendmsg(w.sock, msg[:], unix.UnixRights(fd), nil, unix.MSG_NOSIGNAL); err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("%w: sending region %d: %v", errRegions, r.id, err)
	}
	w.close()
	w.cur = r
	return r, nil
}

// newSealed makes a memfd of size bytes that can neither shrink nor grow,
// mapped read-write.
func newSealed(name string, size int) (fd int, mem []byte, err error) {
	fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, nil, fmt.Errorf("%w: memfd_create: %v", errRegions, err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return -1, nil, fmt.Errorf("%w: sizing to %d bytes: %v", errRegions, size, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return -1, nil, fmt.Errorf("%w: sealing: %v", errRegions, err)
	}
	mem, err = unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return -1, nil, fmt.Errorf("%w: mapping %d bytes: %v", errRegions, size, err)
	}
	return fd, mem, nil
}

func (w *regionWriter) close() {
	if w.cur != nil {
		unix.Munmap(w.cur.mem)
		w.cur = nil
	}
}

// regionReader maps the other side's current region of one role.
type regionReader struct {
	sock int
	role byte
	id   uint64
	mem  []byte
}

// view returns the first n bytes of region id, receiving it (and dropping
// the regions it supersedes) if it is new.
func (r *regionReader) view(id, n uint64) ([]byte, error) {
	deadline := time.Now().Add(regionWait)
	for r.id != id {
		if r.id > id {
			return nil, fmt.Errorf("%w %d was superseded by region %d", errRegions, id, r.id)
		}
		if err := r.receive(deadline); err != nil {
			return nil, err
		}
	}
	if n > uint64(len(r.mem)) {
		return nil, fmt.Errorf("%w %d holds %d bytes, not %d", errRegions, id, len(r.mem), n)
	}
	return r.mem[:n:n], nil
}

// receive takes the next REGION message off the socket and maps it.
func (r *regionReader) receive(deadline time.Time) error {
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("%w: none arrived within %s", errRegions, regionWait)
		}
		fds := []unix.PollFd{{Fd: int32(r.sock), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(wait/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: poll: %v", errRegions, err)
		}
		if n > 0 {
			break
		}
	}
	var msg [regionMsgSize + 1]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, flags, _, err := unix.Recvmsg(r.sock, msg[:], oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
	if err != nil {
		return fmt.Errorf("%w: recvmsg: %v", errRegions, err)
	}
	var fds []int
	if scms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, scm := range scms {
			if got, err := unix.ParseUnixRights(&scm); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	switch {
	case n == 0:
		return fmt.Errorf("%w: the regions socket was closed", errRegions)
	case n != regionMsgSize || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
		return fmt.Errorf("%w: malformed message of %d bytes (flags %#x)", errRegions, n, flags)
	case len(fds) != 1:
		return fmt.Errorf("%w: message with %d descriptors, want 1", errRegions, len(fds))
	case msg[0] != 1 || msg[1] != r.role || msg[2]|msg[3]|msg[4]|msg[5]|msg[6]|msg[7] != 0:
		return fmt.Errorf("%w: bad message header % x (want role %d)", errRegions, msg[:8], r.role)
	}
	id := binary.LittleEndian.Uint64(msg[8:])
	size := binary.LittleEndian.Uint64(msg[16:])
	if id <= r.id || size == 0 || size > maxRegion {
		return fmt.Errorf("%w: region %d of %d bytes after region %d", errRegions, id, size, r.id)
	}
	mem, err := mapSealed(fds[0], size)
	if err != nil {
		return fmt.Errorf("%w %d: %v", errRegions, id, err)
	}
	r.close()
	r.id, r.mem = id, mem
	return nil
}

// mapSealed maps size bytes of a memfd read-only after checking that it
// cannot shrink below them.
func mapSealed(fd int, size uint64) ([]byte, error) {
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		return nil, fmt.Errorf("not a sealable memfd: %v", err)
	}
	if seals&unix.F_SEAL_SHRINK == 0 {
		return nil, errors.New("not sealed against shrinking")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if uint64(st.Size) < size {
		return nil, fmt.Errorf("announced %d bytes, holds %d", size, st.Size)
	}
	return unix.Mmap(fd, 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
}

func (r *regionReader) close() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}
