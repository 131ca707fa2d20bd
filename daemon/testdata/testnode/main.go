// testnode is a dora node whose behaviour the daemon tests choose with its
// first argument.
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/apis/go/node"
	"github.com/dora-go/dora/internal/handoff"
)

func main() {
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "testnode:", err)
		os.Exit(1)
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func run(mode string, args []string) error {
	switch mode {
	case "exit":
		fmt.Fprintln(os.Stderr, "failing before connecting")
		os.Exit(atoi(args[0]))
	case "sleep":
		time.Sleep(time.Hour)
	case "take-and-die":
		return takeAndDie()
	}
	n, err := node.Init()
	if err != nil {
		return err
	}
	defer n.Close()
	ctx := context.Background()
	switch mode {
	case "source": // source COUNT SIZE: on each tick send a payload of SIZE bytes numbered i
		count, size := atoi(args[0]), atoi(args[1])
		for i := 0; i < count; {
			ev, err := n.Recv(ctx)
			if err != nil {
				return err
			}
			if ev.Type == node.Stop {
				return nil
			}
			if ev.Type != node.Input {
				continue
			}
			ev.Release()
			if err := send(n, i, size); err != nil {
				return err
			}
			i++
		}
		return nil
	case "burst": // burst COUNT SIZE: send COUNT payloads back to back
		count, size := atoi(args[0]), atoi(args[1])
		for i := 0; i < count; i++ {
			if err := send(n, i, size); err != nil {
				return err
			}
		}
		return nil
	case "jitter": // jitter COUNT SIZE: send COUNT payloads, pausing 2 ms after about one in four
		count, size := atoi(args[0]), atoi(args[1])
		rng := rand.New(rand.NewPCG(uint64(count), uint64(size)))
		for i := 0; i < count; i++ {
			if err := send(n, i, size); err != nil {
				return err
			}
			if rng.IntN(4) == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
		return nil
	case "relay": // relay: send every input on "data" as it came
		var ev node.Event
		for {
			if err := n.RecvInto(ctx, &ev); err != nil {
				return err
			}
			switch ev.Type {
			case node.Input:
				if err := n.SendOutputBytes("data", ev.Data); err != nil {
					return err
				}
			case node.Stop:
				return nil
			}
		}
	case "causal": // causal COUNT: input "derived" i must come after input "orig" i
		count := atoi(args[0])
		got := map[string]int{}
		last := map[string]int{"orig": -1, "derived": -1}
		var ev node.Event
		for {
			if err := n.RecvInto(ctx, &ev); err != nil {
				return err
			}
			switch ev.Type {
			case node.Input:
				i, err := check(ev.Data)
				if err != nil {
					return fmt.Errorf("input %q: %w", ev.ID, err)
				}
				if i != last[ev.ID]+1 {
					return fmt.Errorf("input %q: message %d after %d", ev.ID, i, last[ev.ID])
				}
				if ev.ID == "derived" && i > last["orig"] {
					return fmt.Errorf("derived message %d came before its original", i)
				}
				last[ev.ID] = i
				got[ev.ID]++
			case node.Stop:
				fmt.Printf("received %d originals, %d derived\n", got["orig"], got["derived"])
				if got["orig"] != count || got["derived"] != count {
					return fmt.Errorf("want %d of each", count)
				}
				return nil
			}
		}
	case "sink": // sink WANT [DELAY_MS]: check payloads, expect at least WANT, stop on Stop
		want, delay := atoi(args[0]), 0
		if len(args) > 1 {
			delay = atoi(args[1])
		}
		got, last := 0, -1
		var ev node.Event
		for {
			if err := n.RecvInto(ctx, &ev); err != nil {
				return err
			}
			switch ev.Type {
			case node.Input:
				if ev.ID != "data" {
					continue
				}
				i, err := check(ev.Data)
				if err != nil {
					return fmt.Errorf("input %q: %w", ev.ID, err)
				}
				if i <= last {
					return fmt.Errorf("message %d after %d", i, last)
				}
				last = i
				got++
				time.Sleep(time.Duration(delay) * time.Millisecond)
			case node.InputClosed:
				fmt.Println("closed", ev.ID)
			case node.Stop:
				fmt.Printf("received %d messages, last %d\n", got, last)
				if got < want {
					return fmt.Errorf("received %d messages, want at least %d", got, want)
				}
				return nil
			}
		}
	case "crash": // crash CODE: exit with CODE after the first input
		for {
			ev, err := n.Recv(ctx)
			if err != nil {
				return err
			}
			if ev.Type == node.Input {
				fmt.Fprintln(os.Stderr, "something went badly wrong")
				os.Exit(atoi(args[0]))
			}
		}
	case "die-holding": // die-holding: SIGKILL itself while holding its first input
		for {
			ev, err := n.Recv(ctx)
			if err != nil {
				return err
			}
			if ev.Type == node.Input {
				fmt.Println("holding", len(ev.Data), "bytes, dying")
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	case "stall": // stall: keep asking for events, never read them
		var e wire.Encoder
		req := e.PutNextEvents(256)
		c := wire.NewConn(n.Config().EventsFD)
		for i := 0; i < 10000; i++ {
			if err := c.WriteFrame(req); err != nil {
				break
			}
		}
		fmt.Println("asked for events; not reading them")
		time.Sleep(time.Hour)
	case "ignore-stop":
		fmt.Println("ignoring every event")
		time.Sleep(time.Hour)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// send writes payload i: its index, then a byte pattern derived from it.
func send(n *node.Node, i, size int) error {
	return n.SendOutputRaw("data", size, func(buf []byte) {
		if size >= 8 {
			binary.LittleEndian.PutUint64(buf, uint64(i))
		}
		for j := 8; j < len(buf); j += 4096 {
			buf[j] = byte(i + j)
		}
		if len(buf) > 8 {
			buf[len(buf)-1] = byte(i)
		}
	})
}

func check(b []byte) (int, error) {
	if len(b) < 8 {
		return 0, fmt.Errorf("%d bytes", len(b))
	}
	i := int(binary.LittleEndian.Uint64(b))
	for j := 8; j < len(b); j += 4096 {
		if b[j] != byte(i+j) && j != len(b)-1 {
			return i, fmt.Errorf("message %d corrupt at byte %d", i, j)
		}
	}
	if len(b) > 8 && b[len(b)-1] != byte(i) {
		return i, fmt.Errorf("message %d corrupt at its last byte", i)
	}
	return i, nil
}

// takeAndDie speaks the protocol by hand to win the receiver's request
// for events, as a sender about to hand it a message, and exits without
// answering it.
func takeAndDie() error {
	cfg, err := wire.ConfigFromEnv()
	if err != nil {
		return err
	}
	ctrl := wire.NewConn(cfg.ControlFD)
	var e wire.Encoder
	if err := ctrl.WriteFrame(e.PutRegister(wire.Register{Version: wire.Version, DataflowID: cfg.DataflowID, NodeID: cfg.NodeID, Features: wire.FeatureHandoff})); err != nil {
		return err
	}
	f, fds, err := ctrl.ReadFrame()
	if err != nil {
		return err
	}
	routes, err := wire.NewDecoder(f).Routes()
	if err != nil {
		return err
	}
	table, err := handoff.Open(fds[0], int(routes.Slots))
	if err != nil {
		return err
	}
	if _, _, err := ctrl.ReadFrame(); err != nil { // REGISTER_REPLY
		return err
	}
	to := int(routes.Outputs[0].Receivers[0])
	for !table.Take(to, int(routes.Self)) {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("took the request; exiting without answering it")
	os.Exit(0)
	return nil
}
