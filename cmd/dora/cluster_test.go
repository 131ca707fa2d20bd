package main

import (
	"strings"
	"testing"
)

func TestHostPort(t *testing.T) {
	tests := []struct {
		addr string
		port int
		want string
	}{
		{"127.0.0.1", 6012, "127.0.0.1:6012"},
		{"10.0.0.2:7000", 6012, "10.0.0.2:7000"},
		{"robot.local", 53290, "robot.local:53290"},
		{"::1", 6012, "[::1]:6012"},
		{"[::1]", 6012, "[::1]:6012"},
		{"[::1]:9", 6012, "[::1]:9"},
	}
	for _, tt := range tests {
		if got := hostPort(tt.addr, tt.port); got != tt.want {
			t.Errorf("hostPort(%q, %d) = %q, want %q", tt.addr, tt.port, got, tt.want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "localhost": true, "::1": true, "[::1]": true,
		"0.0.0.0": false, "": false, "192.168.1.10": false, "::": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %t", host, got)
		}
	}
}

// TestNoCoordinator: the CLI says what to do.
func TestNoCoordinator(t *testing.T) {
	code, _, errOut := dora(t, "list", "--coordinator-addr", "127.0.0.1:1")
	if code != 1 || !strings.HasPrefix(errOut, "error: no coordinator at 127.0.0.1:1: run `dora up` first") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
