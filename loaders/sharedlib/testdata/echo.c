/* FixtureEcho of runtime/runtimetest, as a C operator. */
#include "operator_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned long inputs;
} echo_t;

static int id_is(const Vec_uint8_t *v, const char *s) {
    size_t n = strlen(s);
    return v->len == n && memcmp(v->ptr, s, n) == 0;
}

/* dup copies n bytes into a fresh malloc'd buffer (never NULL). */
static uint8_t *dup(const uint8_t *p, size_t n) {
    uint8_t *q = malloc(n ? n : 1);
    if (n) memcpy(q, p, n);
    return q;
}

static DoraResult_t error_result(const char *msg) {
    DoraResult_t r = {0};
    r.error.ptr = (uint8_t *)strdup(msg);
    r.error.len = strlen(msg);
    r.error.cap = r.error.len + 1;
    return r;
}

DoraInitResult_t dora_init_operator(void) {
    DoraInitResult_t r = {0};
    r.operator_context = calloc(1, sizeof(echo_t));
    return r;
}

DoraResult_t dora_drop_operator(void *ctx) {
    free(ctx);
    DoraResult_t r = {0};
    return r;
}

OnEventResult_t dora_on_event(const RawEvent_t *event, const SendOutput_t *send_output, void *ctx) {
    echo_t *e = ctx;
    OnEventResult_t res = {0};
    res.status = DORA_STATUS_CONTINUE;
    if (event->input == NULL) {
        return res;
    }
    const Input_t *in = event->input;
    e->inputs++;
    if (id_is(&in->id, "fail")) {
        res.result = error_result("requested failure");
        return res;
    }
    if (id_is(&in->id, "stop")) {
        res.status = DORA_STATUS_STOP;
        return res;
    }
    if (id_is(&in->id, "stop_all")) {
        res.status = DORA_STATUS_STOP_ALL;
        return res;
    }
    Output_t out = {0};
    if (id_is(&in->id, "count")) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%lu", e->inputs);
        out.id.ptr = (uint8_t *)strdup("count");
        out.id.len = 5;
        out.id.cap = 6;
        out.data.ptr = dup((const uint8_t *)buf, (size_t)n);
        out.data.len = out.data.cap = (size_t)n;
    } else {
        out.id.ptr = dup(in->id.ptr, in->id.len);
        out.id.len = out.id.cap = in->id.len;
        out.data.ptr = dup(in->data.ptr, in->data.len);
        out.data.len = out.data.cap = in->data.len;
    }
    res.result = send_output->send_output.call(send_output->send_output.env_ptr, out);
    return res;
}
