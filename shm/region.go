// Package shm provides the shared-memory regions large messages travel in:
// memfd-backed (nothing appears in /dev/shm, and the kernel frees a region
// once its last descriptor and mapping are gone, even after SIGKILL),
// mapped once and reused for many messages.
package shm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Region is one mapped shared-memory region.
type Region struct {
	fd  int
	mem []byte
}

// Create makes a new region of size bytes, mapped read-write. name only
// shows in /proc/<pid>/fd, for debugging.
func Create(name string, size int) (*Region, error) {
	if size <= 0 {
		return nil, fmt.Errorf("shm: region size %d", size)
	}
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("shm: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("shm: sizing region to %d bytes: %w", size, err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("shm: mapping %d bytes: %w", size, err)
	}
	return &Region{fd: fd, mem: mem}, nil
}

// MapReadOnly maps size bytes of the region behind fd read-only and closes
// fd: the mapping alone keeps the region alive.
func MapReadOnly(fd int, size uint64) (*Region, error) {
	return mapFD(fd, size, unix.PROT_READ, "read-only")
}

// MapReadWrite is MapReadOnly for a region others write too (the daemon's
// hand-off table).
func MapReadWrite(fd int, size uint64) (*Region, error) {
	return mapFD(fd, size, unix.PROT_READ|unix.PROT_WRITE, "read-write")
}

func mapFD(fd int, size uint64, prot int, how string) (*Region, error) {
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("shm: fstat: %w", err)
	}
	if size == 0 || size > uint64(st.Size) {
		return nil, fmt.Errorf("shm: region claims %d bytes but its file has %d", size, st.Size)
	}
	mem, err := unix.Mmap(fd, 0, int(size), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shm: mapping %d bytes %s: %w", size, how, err)
	}
	return &Region{fd: -1, mem: mem}, nil
}

// Bytes is the mapped memory.
func (r *Region) Bytes() []byte { return r.mem }

// Size is the region's size in bytes.
func (r *Region) Size() int { return len(r.mem) }

// FD is the region's descriptor, or -1 for read-only mappings.
func (r *Region) FD() int { return r.fd }

// Close unmaps the region and closes its descriptor.
func (r *Region) Close() error {
	var err error
	if r.mem != nil {
		err = unix.Munmap(r.mem)
		r.mem = nil
	}
	if r.fd >= 0 {
		if cerr := unix.Close(r.fd); err == nil {
			err = cerr
		}
		r.fd = -1
	}
	if err != nil {
		return fmt.Errorf("shm: closing region: %w", err)
	}
	return nil
}

// Dup returns a duplicate of fd that survives closing the original, for
// handing a region to another owner.
func Dup(fd int) (int, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("fcntl(F_DUPFD_CLOEXEC)", err)
	}
	return nfd, nil
}
