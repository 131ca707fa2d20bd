package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/dora-go/dora/abi/wire"
	"github.com/dora-go/dora/apis/go/node"
	"github.com/dora-go/dora/internal/descriptor"
	"github.com/dora-go/dora/loaders"
	"github.com/dora-go/dora/runtime"
	"github.com/spf13/cobra"
)

func newRuntimeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "runtime",
		Short: "Run a runtime node hosting operators (started by the daemon)",
		Long: `The daemon starts this command for every node that has operators; it is not
meant to be run by hand.`,
		Args:    cobra.NoArgs,
		GroupID: groupCluster,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := wire.ConfigFromEnv()
			if err != nil {
				return err
			}
			var spec descriptor.Node
			if err := json.Unmarshal(cfg.Node, &spec); err != nil || !spec.IsRuntime() {
				return fmt.Errorf("%s does not describe a runtime node (%v)", wire.EnvNodeConfig, err)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			defer loaders.Shutdown()
			host := runtime.Load(cmd.Context(), runtime.Config{
				Node: &spec, DataflowDir: cfg.DataflowDir, Loaders: loaders.New(), Isolated: loaders.NewIsolated(), Logger: log,
				HotReload: os.Getenv(envHotReload) == "1", Stdout: os.Stdout, Stderr: os.Stderr,
			})
			n, err := node.InitWithConfig(cfg)
			if err != nil {
				return err
			}
			defer n.Close()
			if err := host.Run(cmd.Context(), runtime.NodeLink{N: n}); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("runtime node %q: %w", spec.ID, err)}
			}
			return nil
		},
	}
}
