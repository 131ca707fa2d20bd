package wasm

import (
	"context"
	"log/slog"

	"github.com/tetratelabs/wazero/api"

	wasmabi "github.com/dora-go/dora/abi/wasm"
	"github.com/dora-go/dora/runtime"
)

// hostFunctions are the names the "dora" import module provides.
var hostFunctions = map[string]bool{
	wasmabi.ImportSendOutput:     true,
	wasmabi.ImportSendOutputMeta: true,
	wasmabi.ImportSetError:       true,
	wasmabi.ImportSetState:       true,
	wasmabi.ImportLog:            true,
}

// maxOutputIDs bounds the cache of output id strings of one instance.
const maxOutputIDs = 1024

// instantiateHost instantiates the "dora" import module in the instance's
// runtime. Its functions are closures over the instance: no lookup on the
// hot path. They are api.GoModuleFunc (no reflection) and read guest
// memory through views that are valid during the call only.
func (in *instance) instantiateHost(ctx context.Context) error {
	b := in.r.NewHostModuleBuilder(wasmabi.ImportModule)
	fn := func(name string, f api.GoModuleFunc, params []api.ValueType, results []api.ValueType, names ...string) {
		b.NewFunctionBuilder().WithGoModuleFunction(f, params, results).WithParameterNames(names...).Export(name)
	}
	fn(wasmabi.ImportSendOutput, in.hostSendOutput,
		[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32},
		"id_ptr", "id_len", "data_ptr", "data_len")
	fn(wasmabi.ImportSendOutputMeta, in.hostSendOutputMeta,
		[]api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i32},
		"id_ptr", "id_len", "data_ptr", "data_len", "meta_ptr", "meta_len")
	fn(wasmabi.ImportSetError, in.hostSetError, []api.ValueType{i32, i32}, nil, "ptr", "len")
	fn(wasmabi.ImportSetState, in.hostSetState, []api.ValueType{i32, i32}, nil, "ptr", "len")
	fn(wasmabi.ImportLog, in.hostLog, []api.ValueType{i32, i32, i32}, nil, "level", "ptr", "len")
	_, err := b.Instantiate(ctx)
	return err
}

// outputID returns id as a string the runtime may keep, without an
// allocation once the id was seen.
func (in *instance) outputID(id []byte) string {
	if s, ok := in.outIDs[string(id)]; ok {
		return s
	}
	s := string(id)
	if len(in.outIDs) < maxOutputIDs {
		in.outIDs[s] = s
	}
	return s
}

func (in *instance) send(mod api.Module, stack []uint64, withMeta bool) int32 {
	if in.sender == nil {
		return wasmabi.SendInvalid
	}
	mem := mod.Memory()
	id, ok1 := mem.Read(uint32(stack[0]), uint32(stack[1]))
	data, ok2 := mem.Read(uint32(stack[2]), uint32(stack[3]))
	if !ok1 || !ok2 || len(id) == 0 {
		return wasmabi.SendInvalid
	}
	out := runtime.Output{ID: in.outputID(id), Data: data}
	if withMeta {
		meta, ok := mem.Read(uint32(stack[4]), uint32(stack[5]))
		if !ok {
			return wasmabi.SendInvalid
		}
		md, err := wasmabi.DecodeMetadata(meta)
		if err != nil {
			return wasmabi.SendInvalid
		}
		out.Metadata = md
	}
	if err := in.sender.Send(out); err != nil {
		if in.sendErr == nil {
			in.sendErr, in.sendID = err, out.ID
		}
		return wasmabi.SendFailed
	}
	return wasmabi.SendOK
}

func (in *instance) hostSendOutput(_ context.Context, mod api.Module, stack []uint64) {
	stack[0] = uint64(uint32(in.send(mod, stack, false)))
}

func (in *instance) hostSendOutputMeta(_ context.Context, mod api.Module, stack []uint64) {
	stack[0] = uint64(uint32(in.send(mod, stack, true)))
}

// readBounded reads a guest string argument, truncated to MaxErrorLen.
func readBounded(mod api.Module, ptr, n uint64) ([]byte, bool) {
	if n > wasmabi.MaxErrorLen {
		n = wasmabi.MaxErrorLen
	}
	return mod.Memory().Read(uint32(ptr), uint32(n))
}

func (in *instance) hostSetError(_ context.Context, mod api.Module, stack []uint64) {
	msg, ok := readBounded(mod, stack[0], stack[1])
	if !ok {
		msg = []byte("(set_error called with an out-of-range message)")
	}
	in.errBuf = append(in.errBuf[:0], msg...)
	in.errSet = true
}

func (in *instance) hostSetState(_ context.Context, mod api.Module, stack []uint64) {
	if !in.inState {
		return // only meaningful during dora_save_state
	}
	st, ok := mod.Memory().Read(uint32(stack[0]), uint32(stack[1]))
	if !ok {
		in.errBuf = append(in.errBuf[:0], "set_state called with an out-of-range buffer"...)
		in.errSet = true
		return
	}
	in.state = append(in.state[:0], st...)
}

func (in *instance) hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level := slog.Level(int32(uint32(stack[0])))
	if !in.logger.Enabled(ctx, level) {
		return
	}
	msg, ok := readBounded(mod, stack[1], stack[2])
	if !ok {
		msg = []byte("(log called with an out-of-range message)")
	}
	in.logger.Log(ctx, level, string(msg), "source", "guest")
}
