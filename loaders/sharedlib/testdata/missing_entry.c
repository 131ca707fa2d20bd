/* FixtureMissingEntryPoint: a well-formed operator library without
 * dora_on_event. */
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
