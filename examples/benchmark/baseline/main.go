// Command baseline measures what the benchmark's latency target is set
// against: one-way latency of a raw 8-byte message over a unix socket
// between two processes, with the benchmark's 5 ms gaps. The receiver
// blocks in read(2) on a plain blocking socket, the cheapest wake-up.
// With -relay the message goes through a middle process first, as it goes
// through the daemon in dora: the floor of any design with a broker hop.
//
//	go run ./examples/benchmark/baseline [-n 400] [-relay]
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	n := flag.Int("n", 400, "messages to send")
	relay := flag.Bool("relay", false, "pass each message through a middle process")
	flag.Parse()
	switch flag.Arg(0) {
	case "receive":
		receive(*relay)
		return
	case "relay":
		forward()
		return
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		log.Fatal(err)
	}
	var children []*exec.Cmd
	start := func(f *os.File, args ...string) {
		c := exec.Command(os.Args[0], args...)
		c.ExtraFiles = []*os.File{f}
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			log.Fatal(err)
		}
		f.Close()
		children = append(children, c)
	}
	if *relay {
		next, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			log.Fatal(err)
		}
		// The relay gets fd 3 (from the sender) and fd 4 (to the receiver).
		r := exec.Command(os.Args[0], "relay")
		r.ExtraFiles = []*os.File{os.NewFile(uintptr(fds[1]), "in"), os.NewFile(uintptr(next[0]), "out")}
		r.Stdout, r.Stderr = os.Stdout, os.Stderr
		if err := r.Start(); err != nil {
			log.Fatal(err)
		}
		unix.Close(fds[1])
		unix.Close(next[0])
		children = append(children, r)
		start(os.NewFile(uintptr(next[1]), "receiver"), "-relay", "receive")
	} else {
		start(os.NewFile(uintptr(fds[1]), "receiver"), "receive")
	}
	time.Sleep(200 * time.Millisecond) // let the receiver block in read
	buf := make([]byte, 8)
	for i := 0; i < *n; i++ {
		binary.LittleEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
		if _, err := unix.Write(fds[0], buf); err != nil {
			log.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	unix.Close(fds[0])
	for _, c := range children {
		if err := c.Wait(); err != nil {
			log.Fatal(err)
		}
	}
}

// forward copies 8-byte messages from fd 3 to fd 4, as a broker would.
func forward() {
	buf := make([]byte, 8)
	for readFull(3, buf) {
		if _, err := unix.Write(4, buf); err != nil {
			log.Fatal(err)
		}
	}
	unix.Close(4)
}

func readFull(fd int, buf []byte) bool {
	for got := 0; got < len(buf); {
		m, err := unix.Read(fd, buf[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || m == 0 {
			return false
		}
		got += m
	}
	return true
}

func receive(relay bool) {
	var lat []time.Duration
	buf := make([]byte, 8)
	for readFull(3, buf) {
		lat = append(lat, time.Since(time.Unix(0, int64(binary.LittleEndian.Uint64(buf)))))
	}
	what := "raw unix socket, 8 B one-way"
	if relay {
		what = "raw unix sockets through a relay process, 8 B"
	}
	slices.Sort(lat)
	at := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("%s, 5 ms gaps: n=%d p50=%v p95=%v p99=%v min=%v max=%v\n",
		what, len(lat), at(.5), at(.95), at(.99), lat[0], lat[len(lat)-1])
}
