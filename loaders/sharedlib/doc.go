// Package sharedlib loads C-ABI shared-library operators
// (abi/c/operator_api.h) into a runtime node, without cgo: the dora binary
// is built with CGO_ENABLED=0 and calls C through purego.
//
// # Calls into C
//
// dora_init_operator, dora_on_event and dora_drop_operator return structs
// of 32, 32 and 24 bytes, which the SysV amd64 ABI returns through a hidden
// pointer passed in rdi (and echoed back in rax). On amd64 the loader calls
// them with purego.SyscallN, the hidden pointer first, which avoids
// purego's reflection-based RegisterFunc (about 3x slower) and allocates
// nothing. Elsewhere (arm64 passes the hidden pointer in x8, which SyscallN
// cannot set) it uses RegisterFunc.
//
// Each operator owns one block of C memory (malloc'd once) holding the
// RawEvent_t, Input_t, SendOutput_t and the result slot, plus a buffer the
// event's id, trace context and error text are copied into. Input data is
// passed in place: shared memory as is, Go memory pinned (runtime.Pinner)
// for the duration of the call and unlinked from C memory right after.
//
// # send_output
//
// Every SendOutput_t points at the same purego callback (callback slots are
// never freed and there are 2000 per process); its env_ptr is an integer
// handle into a table of per-operator entries holding the Sender of the
// call in progress. The callback takes the 72-byte Output_t by value, hands
// the runtime a runtime.Output that views the operator's buffers, and frees
// them with the C library's free once Send returns. Outside of a
// dora_on_event call of its operator (a C thread calling late) it fails
// with an error DoraResult_t instead of reaching a stale Sender.
//
// # C's stdout
//
// C stdio is fully buffered on a pipe and os.Exit does not flush it. The
// first load makes C's stdout line-buffered, the loader flushes it after
// every call into an operator (on glibc it first peeks at the FILE's
// public write pointers, so an empty buffer costs no C call), and FlushC
// flushes all C streams; the runtime calls it before it exits.
//
// # Faults
//
// A C operator runs in the node's process: a crash in it (SIGSEGV, abort)
// ends the process, and a call that never returns blocks its goroutine
// and OS thread for good. Untrusted operators belong in an isolated
// runtime node.
//
// # Life cycle
//
// Load dlopens with RTLD_NOW|RTLD_LOCAL, checks the three symbols and calls
// dora_init_operator. Close calls dora_drop_operator once, then dlcloses:
// it is the last call, after the operator's event loop has drained. Reload
// dlopens a private copy of the new file (dlopen would return the loaded
// object for a known path or inode), initialises it, then drops and
// unloads the old instance; C state does not survive a reload.
package sharedlib
