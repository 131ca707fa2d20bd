/*
 * node_api.h: the dora C node API (the seed's API, unchanged).
 *
 * A C program that is a node of a dataflow includes this header and links
 * the library built by `make build` (bin/libdora_node_api_c.a and .so):
 *
 *   cc node.c -I abi/c -L bin -ldora_node_api_c -lpthread -ldl -lm -o node
 *
 * With both files in bin/, the linker picks the shared one: the program then
 * needs -Wl,-rpath,<dora>/bin (or LD_LIBRARY_PATH) to find it at run time.
 * To embed the static one instead, write
 *   -L bin -Wl,-Bstatic -ldora_node_api_c -Wl,-Bdynamic -lpthread -ldl -lm
 * The library is written in Go; -lpthread -ldl -lm are what the Go runtime
 * inside it needs from the system.
 *
 * OWNERSHIP RULES
 *   - The context from init_dora_context_from_env is freed with
 *     free_dora_context, once, after the last call that uses it.
 *   - Every event from dora_next_event is freed with free_dora_event. The
 *     pointers read_dora_input_id and read_dora_input_data give out point
 *     into the event: they are valid until free_dora_event. Input data that
 *     arrived through shared memory is read in place (no copy); free the
 *     event promptly, as its sender gets the memory back only then.
 *   - Ids and data are not NUL-terminated: use the lengths.
 *   - dora_send_output copies id and data; the caller keeps its buffers.
 *
 * THREADS
 *   One thread at a time may call dora_next_event; dora_send_output may be
 *   called from any thread.
 */
#ifndef DORA_NODE_API_H
#define DORA_NODE_API_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum DoraEventType {
	DoraEventType_Stop,
	DoraEventType_Input,
	DoraEventType_InputClosed,
	DoraEventType_Error,
	DoraEventType_Unknown,
};

/* Connects to the daemon that started this process; NULL on failure, with
 * the reason printed to stderr. Returns once the whole dataflow started. */
void *init_dora_context_from_env(void);

/* Disconnects from the daemon: this node's outputs close. */
void free_dora_context(void *dora_context);

/* Waits for the next event. Returns NULL after the last one (Stop), which
 * comes once every input has closed or the dataflow is stopped, or on an
 * error, printed to stderr. */
void *dora_next_event(void *dora_context);

void free_dora_event(void *dora_event);

enum DoraEventType read_dora_event_type(void *dora_event);

/* For Input and InputClosed events: the input's id. */
void read_dora_input_id(void *dora_event, char **out_ptr, size_t *out_len);

/* For Input events: the payload. Zero-length payloads give a NULL pointer. */
void read_dora_input_data(void *dora_event, char **out_ptr, size_t *out_len);

/* For Input events: the send time, in nanoseconds since the Unix epoch. */
unsigned long long read_dora_input_timestamp(void *dora_event);

/* Sends data_len bytes on output id. Returns 0 on success, -1 on error
 * (printed to stderr). */
int dora_send_output(void *dora_context, char *id_ptr, size_t id_len, char *data_ptr, size_t data_len);

#ifdef __cplusplus
}
#endif

#endif /* DORA_NODE_API_H */
