/* The cheapest operator: ignores every event. For the dispatch benchmark. */
#include "operator_api.h"

#include <stddef.h>

DoraInitResult_t dora_init_operator(void) {
    DoraInitResult_t r = {0};
    return r;
}

DoraResult_t dora_drop_operator(void *ctx) {
    (void)ctx;
    DoraResult_t r = {0};
    return r;
}

OnEventResult_t dora_on_event(const RawEvent_t *event, const SendOutput_t *send_output, void *ctx) {
    (void)event;
    (void)send_output;
    (void)ctx;
    OnEventResult_t r = {0};
    return r;
}
