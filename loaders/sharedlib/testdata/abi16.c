/* An operator built against a different ABI: dora-rs's later layout, where
 * DoraResult_t holds the error as a pointer, so results are 16 bytes and
 * come back in registers, not through a hidden pointer. The loader must
 * notice instead of reading garbage. */
#include <stddef.h>

typedef struct { void *error; } DoraResult16_t;
typedef struct { DoraResult16_t result; void *operator_context; } DoraInitResult16_t;
typedef struct { DoraResult16_t result; unsigned char status; } OnEventResult16_t;

__attribute__((visibility("default"))) DoraInitResult16_t dora_init_operator(void) {
    DoraInitResult16_t r = {{NULL}, NULL};
    return r;
}

__attribute__((visibility("default"))) DoraResult16_t dora_drop_operator(void *ctx) {
    (void)ctx;
    DoraResult16_t r = {NULL};
    return r;
}

__attribute__((visibility("default"))) OnEventResult16_t dora_on_event(const void *event, const void *send, void *ctx) {
    (void)event;
    (void)send;
    (void)ctx;
    OnEventResult16_t r = {{NULL}, 0};
    return r;
}
