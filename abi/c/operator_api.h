/*
 * operator_api.h: what a dora C operator implements.
 *
 * A C operator is a shared library (liboperator.so, built with
 * `cc -shared -fPIC -I <dora>/abi/c`) that defines the three functions
 * below. The runtime node resolves them with dlsym, so they must be
 * exported with exactly these names and signatures (the EXPORT macro keeps
 * them visible under -fvisibility=hidden).
 *
 * Life cycle, as the runtime drives it:
 *   dora_init_operator()                once, right after dlopen;
 *   dora_on_event(ev, send, ctx)        once per event, one at a time;
 *   dora_drop_operator(ctx)             once, last; then dlclose.
 * If dora_init_operator fails (result.error.ptr != NULL) neither
 * dora_on_event nor dora_drop_operator is called; free what you allocated
 * before returning the error.
 *
 * Sending an output from dora_on_event:
 *   DoraResult_t r = send_output->send_output.call(send_output->send_output.env_ptr, output);
 * The Output_t's buffers must come from malloc; the runtime frees them.
 * See operator_types.h for the data types and the ownership rules.
 *
 * Hot reload loads a fresh copy of the library and calls
 * dora_init_operator on it before dropping the old instance: no state
 * survives a reload, static variables included.
 *
 * stdout: the runtime makes C's stdout line-buffered and flushes C's
 * streams after every call into the operator, so printf output shows up in
 * the node's log even without a newline or fflush.
 */
#ifndef DORA_OPERATOR_API_H
#define DORA_OPERATOR_API_H

#include "operator_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef EXPORT
#ifdef _WIN32
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif
#endif

/* Creates the operator's state. On success result.error.ptr is NULL and
 * operator_context is passed to every later call (it may be NULL). */
EXPORT DoraInitResult_t dora_init_operator(void);

/* Frees the operator's state. Called once, after the last dora_on_event. */
EXPORT DoraResult_t dora_drop_operator(void *operator_context);

/* Handles one event. The event and everything it points to are valid only
 * during the call; send_output likewise. Return DORA_STATUS_CONTINUE to
 * keep running, DORA_STATUS_STOP to stop this operator,
 * DORA_STATUS_STOP_ALL to stop the dataflow. An error in result is
 * reported with the operator's id; the status still applies. */
EXPORT OnEventResult_t dora_on_event(
    const RawEvent_t *event,
    const SendOutput_t *send_output,
    void *operator_context);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DORA_OPERATOR_API_H */
