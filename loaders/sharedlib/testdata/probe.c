/* A C operator that exercises every struct path of the ABI, for the
 * loader's own tests. Build with -pthread; -DPROBE_VERSION=N changes what
 * the "version" input answers (hot reload tests). */
#include "operator_api.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PROBE_VERSION
#define PROBE_VERSION 1
#endif

/* Static state: fresh in every dlopened copy of the library. */
static int inits;

/* Every buffer this library handed over to the runtime, which must have
 * freed them all. */
static pthread_mutex_t handed_mu = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t handed[8192];
static size_t nhanded;

static void hand(const void *p) {
    pthread_mutex_lock(&handed_mu);
    if (p && nhanded < sizeof handed / sizeof handed[0]) handed[nhanded++] = (uintptr_t)p;
    pthread_mutex_unlock(&handed_mu);
}

size_t probe_handed(uintptr_t *out, size_t max) {
    pthread_mutex_lock(&handed_mu);
    size_t n = nhanded < max ? nhanded : max;
    memcpy(out, handed, n * sizeof *out);
    nhanded = 0;
    pthread_mutex_unlock(&handed_mu);
    return n;
}

typedef struct {
    char log[1024];
    pthread_t late;
    int late_running;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int go;
    char late_text[256];
    const SendOutput_t *late_send;
} probe_t;

/* The late thread is reachable from probe_go_late, which tests call
 * between events. */
static probe_t *last_probe;

static int id_is(const Vec_uint8_t *v, const char *s) {
    size_t n = strlen(s);
    return v->len == n && memcmp(v->ptr, s, n) == 0;
}

static Vec_uint8_t vec(const void *p, size_t n) {
    Vec_uint8_t v = {0};
    v.ptr = malloc(n ? n : 1);
    if (n) memcpy(v.ptr, p, n);
    v.len = v.cap = n;
    hand(v.ptr);
    return v;
}

static Vec_uint8_t vecs(const char *s) { return vec(s, strlen(s)); }

static DoraResult_t error_result(const char *msg) {
    DoraResult_t r = {0};
    r.error = vecs(msg);
    return r;
}

static DoraResult_t send(const SendOutput_t *s, const char *id, const void *data, size_t n) {
    Output_t out = {0};
    out.id = vecs(id);
    out.data = vec(data, n);
    return s->send_output.call(s->send_output.env_ptr, out);
}

DoraInitResult_t dora_init_operator(void) {
    inits++;
    if (getenv("PROBE_PRINT_INIT")) printf("probe init, no newline;");
    if (getenv("PROBE_INIT_SLEEP_MS")) usleep(1000 * (useconds_t)atoi(getenv("PROBE_INIT_SLEEP_MS")));
    probe_t *p = calloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    last_probe = p;
    DoraInitResult_t r = {0};
    r.operator_context = p;
    return r;
}

DoraResult_t dora_drop_operator(void *ctx) {
    probe_t *p = ctx;
    if (last_probe == p) last_probe = NULL;
    free(p);
    DoraResult_t r = {0};
    return r;
}

static void *thread_send(void *arg) {
    const SendOutput_t *s = arg;
    DoraResult_t *r = malloc(sizeof *r);
    *r = send(s, "from_thread", "hi", 2);
    return r;
}

typedef struct {
    const SendOutput_t *s;
    int n;
    int failures;
} burst_t;

static void *thread_burst(void *arg) {
    burst_t *b = arg;
    for (int i = 0; i < b->n; i++) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%d", i);
        DoraResult_t r = send(b->s, "burst", buf, (size_t)n);
        if (r.error.ptr) {
            b->failures++;
            free(r.error.ptr);
        }
    }
    return NULL;
}

static void *late_send(void *arg) {
    probe_t *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->go) pthread_cond_wait(&p->cond, &p->mu);
    pthread_mutex_unlock(&p->mu);
    /* No dora_on_event of this operator is running now. */
    DoraResult_t r = send(p->late_send, "late", "x", 1);
    if (r.error.ptr) {
        snprintf(p->late_text, sizeof p->late_text, "%.*s", (int)r.error.len, (const char *)r.error.ptr);
        free(r.error.ptr);
    } else {
        snprintf(p->late_text, sizeof p->late_text, "ok");
    }
    return NULL;
}

/* Called by the test between two events: lets the late thread send, and
 * waits for it. */
void probe_go_late(void) {
    probe_t *p = last_probe;
    if (!p || !p->late_running) return;
    pthread_mutex_lock(&p->mu);
    p->go = 1;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->late, NULL);
    p->late_running = 0;
}

static pthread_t printer;
static void *print_later(void *arg) {
    (void)arg;
    printf("printed by a C thread, no newline;");
    return NULL;
}

/* Starts a thread that prints outside of any event, and waits for it. */
void probe_print_from_thread(void) {
    pthread_create(&printer, NULL, print_later, NULL);
    pthread_join(printer, NULL);
}

static void logf_(probe_t *p, const char *what, const Vec_uint8_t *v) {
    size_t n = strlen(p->log);
    snprintf(p->log + n, sizeof p->log - n, "%s%s", n ? "|" : "", what);
    if (v) {
        n = strlen(p->log);
        snprintf(p->log + n, sizeof p->log - n, ":%.*s", (int)v->len, (const char *)v->ptr);
    }
}

OnEventResult_t dora_on_event(const RawEvent_t *event, const SendOutput_t *s, void *ctx) {
    probe_t *p = ctx;
    OnEventResult_t res = {0};
    res.status = DORA_STATUS_CONTINUE;
    if (event->input_closed.ptr) logf_(p, "closed", &event->input_closed);
    if (event->stop) logf_(p, "stop", NULL);
    if (event->error.ptr) logf_(p, "error", &event->error);
    const Input_t *in = event->input;
    if (!in) return res;
    if (in->id.ptr == NULL || in->data.ptr == NULL || in->metadata.open_telemetry_context.ptr == NULL) {
        res.result = error_result("NULL ptr in Input_t");
        return res;
    }
    if (id_is(&in->id, "version")) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%d", PROBE_VERSION);
        res.result = send(s, "version", buf, (size_t)n);
    } else if (id_is(&in->id, "inits")) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%d", inits);
        res.result = send(s, "inits", buf, (size_t)n);
    } else if (id_is(&in->id, "log")) {
        res.result = send(s, "log", p->log, strlen(p->log));
        p->log[0] = 0;
    } else if (id_is(&in->id, "meta")) {
        Output_t out = {0};
        out.id = vecs("meta");
        out.data = vec(in->data.ptr, in->data.len);
        out.metadata.open_telemetry_context = vec(in->metadata.open_telemetry_context.ptr, in->metadata.open_telemetry_context.len);
        res.result = s->send_output.call(s->send_output.env_ptr, out);
    } else if (id_is(&in->id, "env")) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%lu", (unsigned long)(uintptr_t)s->send_output.env_ptr);
        res.result = send(s, "env", buf, (size_t)n);
    } else if (id_is(&in->id, "retain_release")) {
        s->send_output.retain(s->send_output.env_ptr);
        s->send_output.release(s->send_output.env_ptr);
        res.result = send(s, "retain_release", "ok", 2);
    } else if (id_is(&in->id, "thread")) {
        pthread_t t;
        void *ret = NULL;
        pthread_create(&t, NULL, thread_send, (void *)s);
        pthread_join(t, &ret);
        res.result = *(DoraResult_t *)ret;
        free(ret);
    } else if (id_is(&in->id, "threads")) {
        /* 8 threads send 100 outputs each, concurrently. */
        pthread_t t[8];
        burst_t b[8];
        int failures = 0;
        for (int i = 0; i < 8; i++) {
            b[i].s = s;
            b[i].n = 100;
            b[i].failures = 0;
            pthread_create(&t[i], NULL, thread_burst, &b[i]);
        }
        for (int i = 0; i < 8; i++) {
            pthread_join(t[i], NULL);
            failures += b[i].failures;
        }
        if (failures) res.result = error_result("some sends from threads failed");
    } else if (id_is(&in->id, "addr")) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%lu", (unsigned long)(uintptr_t)in->data.ptr);
        res.result = send(s, "addr", buf, (size_t)n);
    } else if (id_is(&in->id, "late_spawn")) {
        p->go = 0;
        p->late_text[0] = 0;
        p->late_send = s; /* the runtime's block outlives the call; the callback refuses late sends */
        p->late_running = 1;
        pthread_create(&p->late, NULL, late_send, p);
    } else if (id_is(&in->id, "late_result")) {
        res.result = send(s, "late_result", p->late_text, strlen(p->late_text));
    } else if (id_is(&in->id, "bad_status")) {
        res.status = 7;
    } else if (id_is(&in->id, "ignore_send_error")) {
        DoraResult_t r = send(s, "ignored", "x", 1);
        free(r.error.ptr);
    } else if (id_is(&in->id, "error_text")) {
        char buf[256];
        snprintf(buf, sizeof buf, "%.*s", (int)in->data.len, (const char *)in->data.ptr);
        res.result = error_result(buf);
    } else if (id_is(&in->id, "print")) {
        printf("%.*s", (int)in->data.len, (const char *)in->data.ptr);
    } else if (id_is(&in->id, "echo_status")) {
        /* data[0] is the status to return, after sending nothing */
        res.status = in->data.len ? in->data.ptr[0] : 0;
    } else {
        res.result = send(s, "unexpected", in->id.ptr, in->id.len);
    }
    return res;
}
