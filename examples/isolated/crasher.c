/* An untrusted operator: it prints each tick and writes through a NULL
 * pointer on its 5th. Isolated, it takes down only its own process. */
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
    printf("tick %d\n", *ticks);
    if (*ticks == 5) {
        fprintf(stderr, "tick 5: writing through a NULL pointer\n");
        fflush(stderr);
        volatile int *volatile p = NULL;
        *p = 5;
    }
    return res;
}
