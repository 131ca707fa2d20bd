// Package isolated runs untrusted operators (`isolate: true` in the
// dataflow) each in a process of its own, so that a crash (a segfault in
// C code, exit(), a Python interpreter abort), a hang or garbage on
// stdout ends only that process, never the runtime node or its other
// operators.
//
// The same interface, in process or not (as nomad's task drivers): Loader
// implements runtime.Loader, and its operators implement runtime.Operator
// and runtime.Reloader. The runtime picks it for isolated operators
// (runtime.Config.Isolated); the child process loads the operator with the
// ordinary in-process loader of its kind.
//
// # Process model
//
// One operator, one child: `dora operator-host` (the same executable,
// Subcommand, Serve), started through hashicorp/go-plugin with its
// handshake and magic cookie, speaking gRPC without generated code (a
// hand-written grpc.ServiceDesc whose messages are
// wrapperspb.BytesValue holding frames in abi/PROTOCOL.md's encoding).
// The child dies with the runtime node (Pdeathsig, forked from one
// long-lived thread), leads its own process group (what the operator
// spawns dies with it), is reaped as soon as it exits, and leaves no
// socket behind (the socket folder goes once connected). abi/ISOLATION.md
// documents every byte.
//
// # Data path
//
// An event is one round trip on a bidirectional stream opened once per
// operator: EVENT, then for each send_output an OUTPUT answered by the
// runtime Sender's result (so outputs keep their order and the operator
// sees send errors), then RESULT. Payloads below 64 KiB travel inline;
// larger ones through a sealed memfd region per direction, mapped once on
// each side and replaced only when a payload outgrows it. About 0.12 ms
// per event for a no-op operator and 0.25 ms for a 4 MiB input
// (BenchmarkIsolatedEvent): for untrusted operators, not for hot loops.
//
// # Crashes and restarts
//
// When the child dies, the call in progress returns an
// *runtime.OperatorError wrapping runtime.ErrOperatorCrashed with the
// exit status or signal and the child's last stderr lines; the runtime
// records it as the operator's failure. The operator is then restarted
// once (Config.Restarts) as a fresh instance: its state is lost (no
// loader offers a state hook that survives a crash yet) and the failed
// event is not replayed, so a poison input cannot loop. A second crash
// leaves the operator dead: STOP, now and for every later event. A call
// whose context ends kills the child (runtime.ErrTimeout for deadlines)
// and leaves the operator dead. Reload revives a dead operator.
//
// # Output and logs
//
// The operator's stdout and stderr reach the runtime's, each line
// prefixed with the operator id. The child's logs are JSON lines on
// go-plugin's stderr pipe, re-emitted through the operator's slog.Logger
// with node=, operator=, loader= and pid=.
package isolated
