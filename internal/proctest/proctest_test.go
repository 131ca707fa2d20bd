package proctest

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestChildIsSeenRunningThenAsZombie(t *testing.T) {
	if _, ok := Read(os.Getpid()); !ok {
		t.Skip("no /proc")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	pid := cmd.Process.Pid
	st, ok := Read(pid)
	if !ok || st.PID != pid || st.PPID != os.Getpid() || st.Comm != "sleep" {
		t.Fatalf("Read(%d) = %+v, %t", pid, st, ok)
	}
	if !slices.ContainsFunc(Children(), func(s Stat) bool { return s.PID == pid }) {
		t.Errorf("Children() lacks %d", pid)
	}
	cmd.Process.Kill()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if st, ok = Read(pid); !ok || st.State == 'Z' {
			break
		}
	}
	if !ok || st.State != 'Z' {
		t.Errorf("killed, unreaped child: %+v, %t; want a zombie", st, ok)
	}
	cmd.Wait()
	if _, ok := Read(pid); ok {
		t.Errorf("reaped child %d is still in /proc", pid)
	}
}
