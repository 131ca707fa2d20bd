/*
 * dora_operator.h: the dora WASM operator ABI for C and C++ guests.
 * ABI.md next to this file documents it byte by byte; this header is
 * its C spelling. Build a guest with clang for wasm32-wasi as a reactor:
 *
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor -fuse-ld=lld \
 *         -I path/to/abi/wasm -o op.wasm op.c
 *
 * (Debian: apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32,
 * and put /usr/lib/llvm-14/bin first in PATH so clang finds wasm-ld.)
 *
 * An operator defines dora_alloc and dora_on_event, and may define
 * dora_init, dora_drop, dora_save_state and dora_restore_state. The
 * declarations below carry the export names, so plain definitions are
 * exported. DORA_DEFINE_ALLOC and DORA_DEFINE_ABI_VERSION give the usual
 * dora_alloc and dora_abi_version.
 */
#ifndef DORA_OPERATOR_H
#define DORA_OPERATOR_H

#include <stdint.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DORA_WASM_ABI_VERSION 1

/* Event kinds: the first argument of dora_on_event. */
enum {
	DORA_EVENT_INPUT = 1,
	DORA_EVENT_INPUT_CLOSED = 2,
	DORA_EVENT_STOP = 3,
	DORA_EVENT_ERROR = 4,
};

/* Results of dora_on_event (and, for 0 and the negative values, of
 * dora_init, dora_save_state and dora_restore_state). */
enum {
	DORA_STATUS_CONTINUE = 0,
	DORA_STATUS_STOP = 1,
	DORA_STATUS_STOP_ALL = 2,
	DORA_RESULT_ERROR = -1, /* message set with dora_set_error */
	DORA_RESULT_PANIC = -2, /* the guest caught a crash of its own code */
};

/* Results of dora_send_output and dora_send_output_meta. */
enum {
	DORA_SEND_OK = 0,
	DORA_SEND_FAILED = 1,  /* the runtime could not send; it reports why */
	DORA_SEND_INVALID = 2, /* bad arguments, or called outside dora_on_event */
};

/* Log levels of dora_log (the values of Go's log/slog). */
enum {
	DORA_LOG_DEBUG = -4,
	DORA_LOG_INFO = 0,
	DORA_LOG_WARN = 4,
	DORA_LOG_ERROR = 8,
};

#define DORA_IMPORT(name) __attribute__((import_module("dora"), import_name(name)))
#define DORA_EXPORT(name) __attribute__((export_name(name)))

/* Imports: functions the runtime provides. */

/* Publishes data as output id. The runtime reads both during the call. */
DORA_IMPORT("send_output")
int32_t dora_send_output(const char *id, uint32_t id_len, const uint8_t *data, uint32_t data_len);

/* Same, with an encoded metadata block (ABI.md, "Metadata"). */
DORA_IMPORT("send_output_meta")
int32_t dora_send_output_meta(const char *id, uint32_t id_len, const uint8_t *data, uint32_t data_len,
			      const uint8_t *meta, uint32_t meta_len);

/* Sets the error message of the current call (the last one wins). */
DORA_IMPORT("set_error")
void dora_set_error(const char *msg, uint32_t len);

/* Hands the operator's state to the runtime during dora_save_state. */
DORA_IMPORT("set_state")
void dora_set_state(const uint8_t *state, uint32_t len);

/* Logs a message with the runtime's logger. */
DORA_IMPORT("log")
void dora_log(int32_t level, const char *msg, uint32_t len);

/* Exports: functions the operator defines. */

/* Returns a buffer of at least size bytes for the runtime to write events
 * into, or NULL. The previous buffer is no longer used by the runtime. */
DORA_EXPORT("dora_alloc")
uint8_t *dora_alloc(uint32_t size);

/* Optional. Called once before the first event; 0 or DORA_RESULT_ERROR. */
DORA_EXPORT("dora_init")
int32_t dora_init(void);

/* Handles one event. All pointers lie in the last dora_alloc buffer and
 * are valid during the call only; a pointer is meaningful only when its
 * length is not 0. For DORA_EVENT_ERROR, data is the error message. */
DORA_EXPORT("dora_on_event")
int32_t dora_on_event(uint32_t kind, const char *id, uint32_t id_len, const uint8_t *data, uint32_t data_len,
		      const uint8_t *meta, uint32_t meta_len);

/* Optional. Called once when the runtime unloads the operator. */
DORA_EXPORT("dora_drop")
void dora_drop(void);

/* Optional, for hot reload: dora_save_state calls dora_set_state and
 * returns 0; dora_restore_state receives those bytes in a new instance. */
DORA_EXPORT("dora_save_state")
int32_t dora_save_state(void);
DORA_EXPORT("dora_restore_state")
int32_t dora_restore_state(const uint8_t *state, uint32_t len);

/* Optional. Returns DORA_WASM_ABI_VERSION. */
DORA_EXPORT("dora_abi_version")
int32_t dora_abi_version(void);

#define DORA_DEFINE_ABI_VERSION() \
	int32_t dora_abi_version(void) { return DORA_WASM_ABI_VERSION; }

/* dora_alloc with malloc: the runtime only ever uses the latest buffer. */
#define DORA_DEFINE_ALLOC()                          \
	static uint8_t *dora_input_buffer_;          \
	uint8_t *dora_alloc(uint32_t size)           \
	{                                            \
		free(dora_input_buffer_);            \
		dora_input_buffer_ = malloc(size);   \
		return dora_input_buffer_;           \
	}

/* Helpers. */

/* Sets a NUL-terminated error message and returns DORA_RESULT_ERROR. */
static inline int32_t dora_error(const char *msg)
{
	dora_set_error(msg, (uint32_t)__builtin_strlen(msg));
	return DORA_RESULT_ERROR;
}

static inline int32_t dora_send(const char *id, const uint8_t *data, uint32_t len)
{
	return dora_send_output(id, (uint32_t)__builtin_strlen(id), data, len);
}

/* The timestamp of a metadata block (nanoseconds since the Unix epoch),
 * or 0 when there is none. */
static inline uint64_t dora_metadata_timestamp(const uint8_t *meta, uint32_t len)
{
	uint64_t t = 0;
	if (len < 8)
		return 0;
	for (int i = 7; i >= 0; i--)
		t = (t << 8) | meta[i];
	return t;
}

#ifdef __cplusplus
}
#endif

#endif /* DORA_OPERATOR_H */
