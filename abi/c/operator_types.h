/*
 * operator_types.h: the data types of the dora C operator ABI.
 *
 * A C operator is a shared library exporting three functions, declared in
 * operator_api.h (which includes this file). The runtime node of dora in Go
 * loads it with dlopen and calls it through the C calling convention of the
 * platform, so these structs ARE the ABI: their field order, sizes and
 * padding must not change. The sizes below are those of an LP64 platform
 * (Linux/macOS on x86_64 or arm64) and are checked by static assertions at
 * the end of this file and by loaders/sharedlib's layout test.
 *
 * The layout is that of dora-rs's operator API of the same era (generated
 * there by safer_ffi): Rust's Option<String> is a Vec_uint8_t whose ptr is
 * NULL for None.
 *
 * OWNERSHIP RULES
 *
 *   1. Buffers the runtime hands to the operator belong to the runtime and
 *      are valid only during the dora_on_event call that received them:
 *      the RawEvent_t itself, its Input_t, the input's id, data and
 *      metadata bytes, input_closed and error. Do not free them, do not
 *      write to them, and copy what you want to keep. Input data may live in
 *      shared memory that is handed back to its sender after the call.
 *      Strings (id, input_closed, error) are NOT NUL-terminated by contract;
 *      use len. (The Go runtime happens to add a NUL after ids and error
 *      texts, but do not rely on it.) An empty buffer has a non-NULL ptr
 *      and len 0.
 *
 *   2. Buffers an operator hands to the runtime were allocated with malloc
 *      (or calloc/realloc/strdup) from the process's C library, and the
 *      runtime frees them with free():
 *        - the id, data and metadata.open_telemetry_context buffers of an
 *          Output_t passed to send_output.call (ownership moves with the
 *          call, whether it succeeds or not; do not touch them afterwards);
 *        - the error buffer of a DoraResult_t returned from
 *          dora_init_operator, dora_on_event or dora_drop_operator.
 *      A NULL ptr means "no buffer" and is never freed. cap is ignored by
 *      the runtime. Never hand over a string literal or a stack buffer.
 *
 *   3. The DoraResult_t returned by send_output.call carries an error
 *      buffer allocated by the runtime with malloc when sending failed
 *      (error.ptr != NULL). The operator owns it: usually it returns it in
 *      its OnEventResult_t (where the runtime frees it again), otherwise it
 *      must free() it.
 *
 *   4. operator_context is the operator's: the runtime passes it back
 *      unchanged and never frees it; dora_drop_operator should.
 *
 * THREADS
 *   The runtime calls dora_on_event for one operator from one thread at a
 *   time (not always the same OS thread). send_output.call may be invoked
 *   from any thread, including one the operator created, but only while a
 *   dora_on_event call of that operator is in progress; outside of it the
 *   call fails with an error DoraResult_t (and still frees the Output_t's
 *   buffers). send_output.retain and .release exist for layout
 *   compatibility and do nothing: a SendOutput_t is only usable during the
 *   dora_on_event call it was passed to.
 *
 *   All threads an operator starts must have ended when dora_drop_operator
 *   returns: the library is unloaded (dlclose) right after.
 */
#ifndef DORA_OPERATOR_TYPES_H
#define DORA_OPERATOR_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A byte buffer (Rust's Vec<u8> with a C layout). 24 bytes. */
typedef struct Vec_uint8 {
    uint8_t *ptr;
    size_t len;
    size_t cap;
} Vec_uint8_t;

/* Success when error.ptr == NULL; otherwise error holds a UTF-8 message. 24 bytes. */
typedef struct DoraResult {
    Vec_uint8_t error;
} DoraResult_t;

/* What dora_init_operator returns. 32 bytes. */
typedef struct DoraInitResult {
    DoraResult_t result;
    void *operator_context;
} DoraInitResult_t;

/* Whether the operator goes on. An enum of uint8_t representation, as in
 * dora-rs (#[repr(u8)]): the enumerators name the values, the type is one
 * byte. */
enum DoraStatus {
    DORA_STATUS_CONTINUE = 0, /* keep running */
    DORA_STATUS_STOP = 1,     /* stop this operator; its outputs close */
    DORA_STATUS_STOP_ALL = 2, /* stop the whole dataflow */
};
typedef uint8_t DoraStatus_t;

/* What dora_on_event returns. 32 bytes: the status is followed by 7 bytes
 * of padding. */
typedef struct OnEventResult {
    DoraResult_t result;
    DoraStatus_t status;
} OnEventResult_t;

/* Metadata travelling with a message. 24 bytes. */
typedef struct Metadata {
    Vec_uint8_t open_telemetry_context;
} Metadata_t;

/* An input message. 72 bytes. */
typedef struct Input {
    Vec_uint8_t id;
    Vec_uint8_t data;
    Metadata_t metadata;
} Input_t;

/* One event. Exactly one of these is set:
 *   input != NULL           an input arrived;
 *   input_closed.ptr != NULL the input named by input_closed was closed;
 *   stop                    the dataflow is stopping;
 *   error.ptr != NULL       the runtime reports an error (error is the text).
 * 64 bytes: input at 0, input_closed at 8, stop at 32, error at 40. */
typedef struct RawEvent {
    Input_t *input;
    Vec_uint8_t input_closed;
    bool stop;
    Vec_uint8_t error;
} RawEvent_t;

/* An output message, passed BY VALUE to send_output.call. 72 bytes. */
typedef struct Output {
    Vec_uint8_t id;
    Vec_uint8_t data;
    Metadata_t metadata;
} Output_t;

/* A callable closure (safer_ffi's ArcDynFn1<DoraResult, Output>): call it
 * as closure.call(closure.env_ptr, output). env_ptr is an opaque handle,
 * not a pointer to dereference. 32 bytes. */
typedef struct ArcDynFn1_DoraResult_Output {
    void *env_ptr;
    DoraResult_t (*call)(void *env_ptr, Output_t output);
    void (*release)(void *env_ptr);
    void (*retain)(void *env_ptr);
} ArcDynFn1_DoraResult_Output_t;

/* The output channel handed to dora_on_event. 32 bytes. */
typedef struct SendOutput {
    ArcDynFn1_DoraResult_Output_t send_output;
} SendOutput_t;

/* Layout checks: an LP64 compiler that disagrees with these numbers cannot
 * talk to the runtime. */
#if UINTPTR_MAX == 0xffffffffffffffffu
#if defined(__cplusplus) && __cplusplus >= 201103L
#define DORA_STATIC_ASSERT(c, m) static_assert(c, m)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define DORA_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
#ifdef DORA_STATIC_ASSERT
DORA_STATIC_ASSERT(sizeof(Vec_uint8_t) == 24, "Vec_uint8_t must be 24 bytes");
DORA_STATIC_ASSERT(sizeof(DoraResult_t) == 24, "DoraResult_t must be 24 bytes");
DORA_STATIC_ASSERT(sizeof(DoraInitResult_t) == 32, "DoraInitResult_t must be 32 bytes");
DORA_STATIC_ASSERT(sizeof(DoraStatus_t) == 1, "DoraStatus_t must be 1 byte");
DORA_STATIC_ASSERT(sizeof(OnEventResult_t) == 32, "OnEventResult_t must be 32 bytes");
DORA_STATIC_ASSERT(offsetof(OnEventResult_t, status) == 24, "OnEventResult_t.status must be at 24");
DORA_STATIC_ASSERT(sizeof(Metadata_t) == 24, "Metadata_t must be 24 bytes");
DORA_STATIC_ASSERT(sizeof(Input_t) == 72, "Input_t must be 72 bytes");
DORA_STATIC_ASSERT(sizeof(RawEvent_t) == 64, "RawEvent_t must be 64 bytes");
DORA_STATIC_ASSERT(offsetof(RawEvent_t, stop) == 32, "RawEvent_t.stop must be at 32");
DORA_STATIC_ASSERT(offsetof(RawEvent_t, error) == 40, "RawEvent_t.error must be at 40");
DORA_STATIC_ASSERT(sizeof(Output_t) == 72, "Output_t must be 72 bytes");
DORA_STATIC_ASSERT(sizeof(ArcDynFn1_DoraResult_Output_t) == 32, "ArcDynFn1_DoraResult_Output_t must be 32 bytes");
DORA_STATIC_ASSERT(sizeof(SendOutput_t) == 32, "SendOutput_t must be 32 bytes");
#undef DORA_STATIC_ASSERT
#endif
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DORA_OPERATOR_TYPES_H */
