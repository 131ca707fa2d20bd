//go:build tools

// Package deps pins the modules that packages under construction will import,
// so that parallel work never has to edit go.mod. It is never compiled.
package deps

import (
	_ "github.com/apache/arrow-go/v18/arrow"
	_ "github.com/apache/arrow-go/v18/arrow/array"
	_ "github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/ebitengine/purego"
	_ "github.com/hashicorp/go-plugin"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go"
	_ "github.com/spf13/cobra"
	_ "github.com/tetratelabs/wazero"
	_ "github.com/tetratelabs/wazero/api"
	_ "github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	_ "golang.org/x/sys/unix"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
	_ "gopkg.in/yaml.v3"
)
