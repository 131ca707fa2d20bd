/* A well-behaved neighbour of crasher in the same runtime node: it counts
 * ticks and stops the dataflow after the 50th. */
#include "operator_api.h"

#include <stdio.h>
#include <stdlib.h>

DoraInitResult_t dora_init_operator(void) {
    DoraInitResult_t r = {0};
    r.operator_context = calloc(1, sizeof(int));
    return r;
}

DoraResult_t dora_drop_operator(void *ctx) {
    free(ctx);
    DoraResult_t r = {0};
    return r;
}

OnEventResult_t dora_on_event(const RawEvent_t *event, const SendOutput_t *send_output, void *ctx) {
    (void)send_output;
    int *ticks = ctx;
    OnEventResult_t res = {0};
    res.status = DORA_STATUS_CONTINUE;
    if (event->input == NULL) {
        return res;
    }
    *ticks += 1;
    if (*ticks % 10 == 0) {
        printf("counter: tick %d\n", *ticks);
    }
    if (*ticks == 50) {
        printf("counter: done, stopping the dataflow\n");
        res.status = DORA_STATUS_STOP_ALL;
    }
    return res;
}
