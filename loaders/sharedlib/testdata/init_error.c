/* FixtureInitError: dora_init_operator fails with a malloc'd message. */
#include "operator_api.h"

#include <stdlib.h>
#include <string.h>

/* The last error buffer handed over, for the loader's leak test. */
void *init_error_last;

DoraInitResult_t dora_init_operator(void) {
    static const char msg[] = "init failed on purpose";
    DoraInitResult_t r = {0};
    r.result.error.ptr = (uint8_t *)strdup(msg);
    init_error_last = r.result.error.ptr;
    r.result.error.len = sizeof msg - 1;
    r.result.error.cap = sizeof msg;
    return r;
}

DoraResult_t dora_drop_operator(void *ctx) {
    (void)ctx;
    abort(); /* never called after a failed init */
}

OnEventResult_t dora_on_event(const RawEvent_t *event, const SendOutput_t *send_output, void *ctx) {
    (void)event;
    (void)send_output;
    (void)ctx;
    abort(); /* never called after a failed init */
}
