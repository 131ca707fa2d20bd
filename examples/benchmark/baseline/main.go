// Command baseline measures what the benchmark's latency target is set
// against: one-way latency of a raw 8-byte message over a unix socket
// between two processes, with the benchmark's 5 ms gaps. The receiver
// blocks in read(2) on a plain blocking socket, the cheapest wake-up.
//
//	go run ./examples/benchmark/baseline [-n 400]
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
	flag.Parse()
	if len(flag.Args()) == 1 && flag.Arg(0) == "receive" {
		receive()
		return
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		log.Fatal(err)
	}
	child := exec.Command(os.Args[0], "receive")
	child.ExtraFiles = []*os.File{os.NewFile(uintptr(fds[1]), "receiver")}
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	if err := child.Start(); err != nil {
		log.Fatal(err)
	}
	unix.Close(fds[1])
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
	if err := child.Wait(); err != nil {
		log.Fatal(err)
	}
}

func receive() {
	var lat []time.Duration
	buf := make([]byte, 8)
	for {
		got := 0
		for got < 8 {
			m, err := unix.Read(3, buf[got:])
			if err == unix.EINTR {
				continue
			}
			if err != nil || m == 0 {
				report(lat)
				return
			}
			got += m
		}
		lat = append(lat, time.Since(time.Unix(0, int64(binary.LittleEndian.Uint64(buf)))))
	}
}

func report(lat []time.Duration) {
	slices.Sort(lat)
	at := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("raw unix socket, 8 B one-way, 5 ms gaps: n=%d p50=%v p95=%v p99=%v min=%v max=%v\n",
		len(lat), at(.5), at(.95), at(.99), lat[0], lat[len(lat)-1])
}
