package wire

import (
	"encoding/json"
	"fmt"
	"os"
)

// EnvNodeConfig is the environment variable that carries a node's
// NodeConfig as JSON.
const EnvNodeConfig = "DORA_NODE_CONFIG"

// DefaultShmThreshold is the payload size from which data travels through
// shared memory instead of inline (dora's value; see ARCHITECTURE.md for
// the measurements behind keeping it).
const DefaultShmThreshold = 4096

// NodeConfig is what the daemon tells a node it spawns.
type NodeConfig struct {
	Version    int    `json:"version"`
	DataflowID string `json:"dataflow_id"`
	NodeID     string `json:"node_id"`
	// ControlFD and EventsFD are the node's ends of its two sockets.
	ControlFD    int           `json:"control_fd"`
	EventsFD     int           `json:"events_fd"`
	Inputs       []InputConfig `json:"inputs"`
	Outputs      []string      `json:"outputs"`
	ShmThreshold int           `json:"shm_threshold"`
	// Node is the node's descriptor entry; runtime nodes read their
	// operators from it.
	Node json.RawMessage `json:"node,omitempty"`
	// DataflowDir is where relative operator paths resolve.
	DataflowDir string `json:"dataflow_dir,omitempty"`
}

// InputConfig describes one input of the node.
type InputConfig struct {
	ID        string `json:"id"`
	Source    string `json:"source"`
	QueueSize int    `json:"queue_size"`
}

// ConfigFromEnv reads the NodeConfig of the current process.
func ConfigFromEnv() (*NodeConfig, error) {
	raw, ok := os.LookupEnv(EnvNodeConfig)
	if !ok {
		return nil, fmt.Errorf("%s is not set: this program must be started by dora (dora run, dora start) as a node of a dataflow", EnvNodeConfig)
	}
	var c NodeConfig
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", EnvNodeConfig, err)
	}
	if c.Version != Version {
		return nil, fmt.Errorf("%s has protocol version %d; this node speaks version %d (rebuild the node against the dora that runs it)", EnvNodeConfig, c.Version, Version)
	}
	if c.ShmThreshold <= 0 {
		c.ShmThreshold = DefaultShmThreshold
	}
	return &c, nil
}
