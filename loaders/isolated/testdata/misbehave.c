/* An operator that misbehaves on request, for the isolation tests: the id
 * of each input says what to do.
 *   segv          write through a NULL pointer (after a line on stderr)
 *   exit          exit(3)
 *   abort         abort()
 *   hang          never return
 *   garbage       write bytes that look like a go-plugin handshake, and
 *                 worse, to fd 1, then echo
 *   print         print a line to stdout and one to stderr, then echo
 *   burst         send 10 outputs "burst" of 0, 16 KiB, ..., 144 KiB,
 *                 output i filled with the byte i
 *   segv_on_drop  echo, and crash in dora_drop_operator later
 *   anything else echo the input under its own id
 * Built with -DCRASH_IN_INIT it crashes in dora_init_operator instead. */
#include "operator_api.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int crash_on_drop;
} state_t;

static int id_is(const Vec_uint8_t *v, const char *s) {
    size_t n = strlen(s);
    return v->len == n && memcmp(v->ptr, s, n) == 0;
}

static uint8_t *copy_bytes(const uint8_t *p, size_t n) {
    uint8_t *q = malloc(n ? n : 1);
    if (n) memcpy(q, p, n);
    return q;
}

static void segv(void) {
    fprintf(stderr, "misbehave: writing through a NULL pointer on purpose\n");
    fflush(stderr);
    volatile int *volatile p = NULL;
    *p = 42;
}

DoraInitResult_t dora_init_operator(void) {
#ifdef CRASH_IN_INIT
    segv();
#endif
    DoraInitResult_t r = {0};
    r.operator_context = calloc(1, sizeof(state_t));
    return r;
}

DoraResult_t dora_drop_operator(void *ctx) {
    state_t *s = ctx;
    if (s->crash_on_drop) {
        segv();
    }
    free(ctx);
    DoraResult_t r = {0};
    return r;
}

static DoraResult_t send(const SendOutput_t *so, const char *id, const uint8_t *data, size_t n) {
    Output_t out = {0};
    out.id.ptr = copy_bytes((const uint8_t *)id, strlen(id));
    out.id.len = out.id.cap = strlen(id);
    out.data.ptr = copy_bytes(data, n);
    out.data.len = out.data.cap = n;
    return so->send_output.call(so->send_output.env_ptr, out);
}

OnEventResult_t dora_on_event(const RawEvent_t *event, const SendOutput_t *send_output, void *ctx) {
    state_t *s = ctx;
    OnEventResult_t res = {0};
    res.status = DORA_STATUS_CONTINUE;
    if (event->input == NULL) {
        return res;
    }
    const Input_t *in = event->input;
    if (id_is(&in->id, "segv")) {
        segv();
    } else if (id_is(&in->id, "exit")) {
        fprintf(stderr, "misbehave: calling exit(3)\n");
        exit(3);
    } else if (id_is(&in->id, "abort")) {
        abort();
    } else if (id_is(&in->id, "hang")) {
        for (;;) {
            pause();
        }
    } else if (id_is(&in->id, "garbage")) {
        static const char junk[] = "\x00\xff\xfe 1|1|unix|/nowhere|grpc|\n\x1b[2Jnot a handshake\n";
        if (write(1, junk, sizeof junk - 1) < 0) {
            abort();
        }
    } else if (id_is(&in->id, "print")) {
        printf("hello from C\n");
        fprintf(stderr, "warning from C\n");
    } else if (id_is(&in->id, "burst")) {
        for (int i = 0; i < 10; i++) {
            size_t n = (size_t)i * 16384;
            uint8_t *buf = malloc(n ? n : 1);
            memset(buf, i, n);
            res.result = send(send_output, "burst", buf, n);
            free(buf);
            if (res.result.error.ptr != NULL) {
                return res;
            }
        }
        return res;
    } else if (id_is(&in->id, "segv_on_drop")) {
        s->crash_on_drop = 1;
    }
    char id[64];
    size_t n = in->id.len < sizeof id - 1 ? in->id.len : sizeof id - 1;
    memcpy(id, in->id.ptr, n);
    id[n] = 0;
    res.result = send(send_output, id, in->data.ptr, in->data.len);
    return res;
}
