package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/dora-go/dora/coordinator"
	"github.com/dora-go/dora/daemon"
	"github.com/dora-go/dora/internal/control"
	"github.com/spf13/cobra"
)

// upWait bounds how long `dora up` waits for what it started to answer.
const upWait = 10 * time.Second

func newUpCmd() *cobra.Command {
	var controlPort, port, natsPort int
	var machineID, token string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a coordinator and a daemon on this machine",
		Long: `Up starts, in the background, a coordinator on this machine unless one already
answers on the control port, and a daemon unless one with that machine id is
already connected. It says what it started; running it again starts nothing.
Their output goes to log files in the dora state folder
($XDG_STATE_HOME/dora or ~/.local/state/dora). Everything listens on
127.0.0.1. dora destroy stops them.`,
		Args:    cobra.NoArgs,
		GroupID: groupCluster,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := &coordinatorTarget{addr: "127.0.0.1", port: controlPort, token: token}
			w := cmd.ErrOrStderr()
			dir := daemon.StateDir()
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("creating the state folder: %w", err)
			}
			rep, err := list(cmd.Context(), t)
			if err != nil && !isNoCoordinator(err) {
				return err
			}
			if err == nil {
				fmt.Fprintf(w, "a coordinator already runs at %s\n", t.address())
			} else {
				logFile := filepath.Join(dir, "coordinator.log")
				pid, err := background(cmd.Context(), logFile, token, func(ctx context.Context) bool {
					var err error
					rep, err = list(ctx, t)
					return err == nil
				}, "coordinator", "--control-port", strconv.Itoa(controlPort), "--port", strconv.Itoa(port), "--nats-port", strconv.Itoa(natsPort))
				if err != nil {
					return fmt.Errorf("starting the coordinator: %w", err)
				}
				fmt.Fprintf(w, "started a coordinator (pid %d): CLI on %s, daemons on 127.0.0.1:%d; log: %s\n", pid, t.address(), port, logFile)
			}
			for _, d := range rep.Daemons {
				if d.MachineID == machineID {
					fmt.Fprintf(w, "a daemon with machine id %s is already connected\n", machineLabel(machineID))
					return nil
				}
			}
			name := "daemon.log"
			if machineID != "" {
				name = "daemon-" + machineID + ".log"
			}
			logFile := filepath.Join(dir, name)
			pid, err := background(cmd.Context(), logFile, token, func(ctx context.Context) bool {
				rep, err := list(ctx, t)
				if err != nil {
					return false
				}
				for _, d := range rep.Daemons {
					if d.MachineID == machineID {
						return true
					}
				}
				return false
			}, "daemon", "--machine-id", machineID, "--coordinator-addr", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				return fmt.Errorf("starting the daemon: %w", err)
			}
			fmt.Fprintf(w, "started a daemon (pid %d, machine id %s); log: %s\n", pid, machineLabel(machineID), logFile)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&controlPort, "control-port", coordinator.DefaultControlPort, "`port` the CLI reaches the coordinator on")
	f.IntVar(&port, "port", coordinator.DefaultDaemonPort, "`port` daemons reach the coordinator on")
	f.IntVar(&natsPort, "nats-port", coordinator.DefaultNATSPort, "`port` of the coordinator's embedded NATS server")
	f.StringVar(&machineID, "machine-id", "", "machine id of the daemon (empty: the default daemon)")
	tokenFlag(cmd, &token)
	return cmd
}

func isNoCoordinator(err error) bool {
	return !errors.Is(err, control.ErrVersion) && !errors.Is(err, control.ErrUnauthorized) &&
		!errors.Is(err, control.ErrWrongPort) && !errors.Is(err, control.ErrMalformed)
}

// background starts this dora with args as a process of its own session
// that outlives the CLI, its output appended to logFile, and waits until
// answers says it serves.
func background(ctx context.Context, logFile, token string, answers func(context.Context) bool, args ...string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	c := exec.Command(exe, args...)
	c.Stdout, c.Stderr = out, out
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	c.Env = os.Environ()
	if token != "" {
		c.Env = append(c.Env, envToken+"="+token)
	}
	if err := c.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	ctx, cancel := context.WithTimeout(ctx, upWait)
	defer cancel()
	for {
		if answers(ctx) {
			return c.Process.Pid, nil
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("it exited (%v); see %s", err, logFile)
		case <-ctx.Done():
			c.Process.Kill()
			return 0, fmt.Errorf("it did not answer within %s; see %s", upWait, logFile)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
