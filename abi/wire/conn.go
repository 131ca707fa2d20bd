//go:build unix

package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn carries frames over one end of a blocking unix stream socket.
//
// Reads use blocking recvmsg calls on the caller's thread rather than Go's
// netpoller: a reader parked in the kernel wakes directly when data arrives,
// which measured noticeably faster per hop than a netpoller wake-up on this
// kind of machine. One goroutine reads; any number may write.
type Conn struct {
	fd int

	rbuf []byte
	r, w int
	oob  []byte
	fds  []int

	wmu  sync.Mutex
	woob []byte
}

// NewConn wraps a connected unix stream socket. The Conn owns fd.
func NewConn(fd int) *Conn {
	return &Conn{fd: fd, rbuf: make([]byte, 64<<10), oob: make([]byte, unix.CmsgSpace(4*253))}
}

// FD is the socket's descriptor.
func (c *Conn) FD() int { return c.fd }

// ReadFrame returns the next frame and the descriptors sent with it, which
// the caller now owns. The frame is only valid until the next ReadFrame.
// io.EOF means the peer closed the connection between frames.
func (c *Conn) ReadFrame() ([]byte, []int, error) {
	if err := c.fill(HeaderSize); err != nil {
		return nil, nil, err
	}
	n := int(binary.LittleEndian.Uint32(c.rbuf[c.r:]))
	if n < HeaderSize || n > MaxFrame {
		return nil, nil, fmt.Errorf("%w: frame length %d", ErrMalformed, n)
	}
	nfds := int(c.rbuf[c.r+5])
	if nfds > MaxFDs {
		return nil, nil, fmt.Errorf("%w: %d descriptors in one frame", ErrMalformed, nfds)
	}
	if err := c.fill(n); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, err
	}
	if nfds > len(c.fds) {
		return nil, nil, fmt.Errorf("%w: frame announces %d descriptors, %d arrived", ErrMalformed, nfds, len(c.fds))
	}
	f := c.rbuf[c.r : c.r+n : c.r+n]
	c.r += n
	var fds []int
	if nfds > 0 {
		fds = append(fds, c.fds[:nfds]...)
		c.fds = append(c.fds[:0], c.fds[nfds:]...)
	}
	return f, fds, nil
}

// Buffered reports how many received bytes wait in user space: a caller
// that polls the socket before ReadFrame must not wait when some do.
func (c *Conn) Buffered() int { return c.w - c.r }

// fill makes at least n unread bytes available in rbuf.
func (c *Conn) fill(n int) error {
	if c.w-c.r >= n {
		return nil
	}
	if c.r > 0 {
		c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
		c.r = 0
	}
	if n > len(c.rbuf) {
		grown := make([]byte, max(n, 2*len(c.rbuf)))
		copy(grown, c.rbuf[:c.w])
		c.rbuf = grown
	}
	for c.w < n {
		m, oobn, err := recvmsg(c.fd, c.rbuf[c.w:], c.oob)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading from socket: %w", err)
		}
		if oobn > 0 {
			if err := c.takeRights(c.oob[:oobn]); err != nil {
				return err
			}
		}
		if m == 0 {
			if c.w == c.r {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		}
		c.w += m
	}
	return nil
}

func (c *Conn) takeRights(oob []byte) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("%w: control message: %v", ErrMalformed, err)
	}
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		c.fds = append(c.fds, fds...)
	}
	if len(c.fds) > 4*MaxFDs {
		return fmt.Errorf("%w: %d descriptors arrived without frames", ErrMalformed, len(c.fds))
	}
	return nil
}

// recvmsg is unix.Recvmsg without the source address, which that function
// allocates on every call and a connected socket never has.
func recvmsg(fd int, p, oob []byte) (n, oobn int, err error) {
	var iov unix.Iovec
	iov.Base = &p[0]
	iov.SetLen(len(p))
	var msg unix.Msghdr
	msg.Iov = &iov
	msg.Iovlen = 1
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_CMSG_CLOEXEC)
	if errno != 0 {
		return 0, 0, errno
	}
	return int(r), int(msg.Controllen), nil
}

// WriteFrame writes one whole frame, passing fds with its first byte.
func (c *Conn) WriteFrame(f []byte, fds ...int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var oob []byte
	if len(fds) > 0 {
		c.woob = unix.UnixRights(fds...)
		oob = c.woob
	}
	for len(f) > 0 {
		n, err := unix.SendmsgN(c.fd, f, oob, nil, unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("writing to socket: %w", err)
		}
		f, oob = f[n:], nil
	}
	return nil
}

// SetWriteTimeout bounds how long one write may block on a full socket
// (SO_SNDTIMEO). A frame that times out may be partly written: the
// connection is then unusable and should be shut down.
func (c *Conn) SetWriteTimeout(d time.Duration) error {
	tv := unix.NsecToTimeval(d.Nanoseconds())
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return fmt.Errorf("setting the socket's send timeout: %w", err)
	}
	return nil
}

// Shutdown wakes a reader blocked in ReadFrame (it returns io.EOF) and
// makes later writes fail, without releasing the descriptor.
func (c *Conn) Shutdown() { _ = unix.Shutdown(c.fd, unix.SHUT_RDWR) }

// Close closes the socket and any received descriptors not yet claimed.
// Call it only once no goroutine is inside ReadFrame.
func (c *Conn) Close() error {
	for _, fd := range c.fds {
		_ = unix.Close(fd)
	}
	c.fds = nil
	if err := unix.Close(c.fd); err != nil && !errors.Is(err, unix.EBADF) {
		return err
	}
	return nil
}
