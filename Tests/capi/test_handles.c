/* C tests of handle misuse: use after free, double free, freeing NULL,
 * made-up handles and handles of the wrong kind, and use of one handle from
 * two threads at once. Each must be refused with a status and a message,
 * never crash or race. Build and run: make test-c. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* x [1, C, S, S] -> Conv (C -> C, 3x3, pad 1) -> y: a model whose run takes
 * long enough (S = 128) for a second thread to find it busy. */
static aimet_model_t *conv_model(int64_t channels, int64_t side) {
    aimet_model_t *m = NULL;
    if (aimet_model_create(&m) != AIMET_STATUS_OK) return NULL;
    const int64_t xshape[4] = {1, channels, side, side}, wshape[4] = {channels, channels, 3, 3};
    const int64_t pads[4] = {1, 1, 1, 1};
    const char *in[2] = {"x", "w"}, *out[1] = {"y"};
    int64_t count = channels * channels * 9;
    float *w = malloc(sizeof(float) * (size_t)count);
    for (int64_t i = 0; i < count; i++) w[i] = (float)(i % 7) / 7.0f - 0.5f;
    int ok = aimet_model_add_input(m, "x", xshape, 4) == AIMET_STATUS_OK &&
             aimet_model_add_node(m, "Conv", "conv", in, 2, out, 1) == AIMET_STATUS_OK &&
             aimet_model_set_attr_ints(m, "conv", "pads", pads, 4) == AIMET_STATUS_OK &&
             aimet_model_add_output(m, "y") == AIMET_STATUS_OK &&
             aimet_model_set_param(m, "w", w, wshape, 4) == AIMET_STATUS_OK;
    free(w);
    if (!ok) {
        fprintf(stderr, "building the model failed: %s\n", aimet_last_error());
        aimet_model_free(m);
        return NULL;
    }
    return m;
}

static aimet_status_t run_once(aimet_model_t *m, const float *x, int64_t channels, int64_t side,
                               aimet_results_t **out) {
    const int64_t shape[4] = {1, channels, side, side};
    aimet_tensor_t input = {"x", x, shape, 4, AIMET_DTYPE_FLOAT32};
    return aimet_model_run(m, &input, 1, NULL, 0, out);
}

static void test_free_null(void) {
    CHECK_OK(aimet_model_free(NULL));
    CHECK_OK(aimet_quantsim_free(NULL));
    CHECK_OK(aimet_results_free(NULL));
}

static void test_use_after_free_and_double_free(void) {
    aimet_model_t *m = conv_model(2, 4);
    CHECK(m != NULL, "model");
    CHECK_OK(aimet_model_free(m));
    /* Every kind of call on the freed handle is refused, nothing touched. */
    CHECK_ERROR(aimet_model_add_output(m, "z"), AIMET_STATUS_INVALID_HANDLE, "not a live model handle");
    int32_t folded = -1;
    CHECK_ERROR(aimet_model_report_counts(m, &folded, NULL, NULL, NULL), AIMET_STATUS_INVALID_HANDLE, "already freed");
    CHECK(folded == -1, "no output written: %d", folded);
    CHECK_ERROR(aimet_model_equalize(m, 0, NULL, 0, NULL, 0), AIMET_STATUS_INVALID_HANDLE, "aimet_model_equalize");
    CHECK_ERROR(aimet_model_free(m), AIMET_STATUS_INVALID_HANDLE, "aimet_model_free");
    CHECK_ERROR(aimet_model_free(m), AIMET_STATUS_INVALID_HANDLE, "not a live model handle");

    /* A new model does not bring the old handle back to life. */
    aimet_model_t *again = conv_model(2, 4);
    CHECK(again != NULL && again != m, "handles are never reused");
    CHECK_ERROR(aimet_model_add_output(m, "z"), AIMET_STATUS_INVALID_HANDLE, "not a live model handle");
    CHECK_OK(aimet_model_set_attr_int(again, "conv", "group", 1));

    /* Results: use after free and double free. */
    float x[2 * 4 * 4] = {0};
    aimet_results_t *results = NULL;
    CHECK_OK(run_once(again, x, 2, 4, &results));
    int32_t count = 0;
    CHECK_OK(aimet_results_count(results, &count));
    CHECK_OK(aimet_results_free(results));
    CHECK_ERROR(aimet_results_count(results, &count), AIMET_STATUS_INVALID_HANDLE, "not a live results handle");
    CHECK_ERROR(aimet_results_free(results), AIMET_STATUS_INVALID_HANDLE, "aimet_results_free");

    /* Quantsim: double free. */
    aimet_quantsim_options_t options = {AIMET_QUANT_SCHEME_TF, 8, 8, -1, NULL};
    aimet_quantsim_t *sim = NULL;
    CHECK_OK(aimet_quantsim_create(again, &options, &sim));
    CHECK_OK(aimet_quantsim_free(sim));
    CHECK_ERROR(aimet_quantsim_begin_calibration(sim), AIMET_STATUS_INVALID_HANDLE, "not a live quantsim handle");
    CHECK_ERROR(aimet_quantsim_free(sim), AIMET_STATUS_INVALID_HANDLE, "aimet_quantsim_free");
    CHECK_OK(aimet_model_free(again));
}

static void test_foreign_handles(void) {
    aimet_model_t *m = conv_model(2, 4);
    float x[2 * 4 * 4] = {0};
    aimet_results_t *results = NULL;
    CHECK_OK(run_once(m, x, 2, 4, &results));
    /* A handle of another kind is refused, and not freed by the wrong free. */
    CHECK_ERROR(aimet_model_add_output((aimet_model_t *)results, "z"), AIMET_STATUS_INVALID_HANDLE,
                "is a results handle, not a model handle");
    CHECK_ERROR(aimet_model_free((aimet_model_t *)results), AIMET_STATUS_INVALID_HANDLE, "not a model handle");
    CHECK_ERROR(aimet_quantsim_run((aimet_quantsim_t *)m, NULL, 0, NULL, 0, &results), AIMET_STATUS_INVALID_HANDLE,
                "is a model handle, not a quantsim handle");
    int32_t count = 0;
    CHECK_OK(aimet_results_count(results, &count));
    CHECK(count == 1, "results intact: %d", count);
    /* Made-up handles: a small number, a real address that is no handle. */
    int not_a_handle = 0;
    CHECK_ERROR(aimet_model_add_output((aimet_model_t *)(uintptr_t)0x1230, "z"), AIMET_STATUS_INVALID_HANDLE,
                "never returned by aimetcle");
    CHECK_ERROR(aimet_model_free((aimet_model_t *)&not_a_handle), AIMET_STATUS_INVALID_HANDLE, "not a live model handle");
    CHECK_ERROR(aimet_results_free((aimet_results_t *)&not_a_handle), AIMET_STATUS_INVALID_HANDLE, "not a live results handle");
    CHECK(not_a_handle == 0, "nothing written through it");
    CHECK_ERROR(aimet_model_add_output(NULL, "z"), AIMET_STATUS_NULL_POINTER, "model is NULL");
    CHECK_OK(aimet_results_free(results));
    CHECK_OK(aimet_model_free(m));
}

/* ---- two threads on one handle ---- */

enum { CHANNELS = 16, SIDE = 128 };

struct shared {
    aimet_model_t *model;
    float *x;
    atomic_int stop;
    atomic_int runs, run_busy, run_other;
};

/* Runs the model over and over until told to stop: every run succeeds or is
 * refused as busy (when the other thread holds the handle for a moment). */
static void *keep_running(void *arg) {
    struct shared *s = arg;
    while (!atomic_load(&s->stop)) {
        aimet_results_t *results = NULL;
        aimet_status_t status = run_once(s->model, s->x, CHANNELS, SIDE, &results);
        if (status == AIMET_STATUS_OK) {
            atomic_fetch_add(&s->runs, 1);
            aimet_results_free(results);
        } else if (status == AIMET_STATUS_BUSY) {
            atomic_fetch_add(&s->run_busy, 1);
        } else {
            fprintf(stderr, "run: status %d: %s\n", status, aimet_last_error());
            atomic_fetch_add(&s->run_other, 1);
        }
    }
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* One round: a runner thread keeps running the model while this thread
 * queries it and tries to free it. Returns 0 when a free happened to land
 * between two runs (possible, rare: the round is then repeated). */
static int two_threads_round(void) {
    struct shared s = {0};
    s.model = conv_model(CHANNELS, SIDE);
    CHECK(s.model != NULL, "model");
    if (!s.model) return 1;
    s.x = calloc(CHANNELS * SIDE * SIDE, sizeof(float));
    pthread_t runner;
    pthread_create(&runner, NULL, keep_running, &s);
    struct timespec pause = {0, 200000};
    while (atomic_load(&s.runs) == 0 && atomic_load(&s.run_other) == 0) nanosleep(&pause, NULL);

    /* Until three busy refusals and a refused free, or 20 s on a very slow machine. */
    int busy = 0, ok = 0, other = 0, free_busy = 0, freed = 0;
    char busy_message[512] = "";
    double start = now();
    while ((busy < 3 || free_busy < 1) && now() - start < 20) {
        int32_t folded = 0;
        aimet_status_t status = aimet_model_report_counts(s.model, &folded, NULL, NULL, NULL);
        if (status == AIMET_STATUS_BUSY) {
            busy++;
            snprintf(busy_message, sizeof busy_message, "%s", aimet_last_error());
        } else if (status == AIMET_STATUS_OK) {
            ok++;
        } else {
            other++;
        }
        if (busy >= 3) {
            status = aimet_model_free(s.model);
            if (status == AIMET_STATUS_BUSY) free_busy++;
            else if (status == AIMET_STATUS_OK) freed = 1;
            else other++;
            if (freed) break;
        }
        nanosleep(&pause, NULL);
    }
    atomic_store(&s.stop, 1);
    pthread_join(runner, NULL);
    if (freed) {
        /* The runner's next call found the handle freed: refused, not a crash. */
        free(s.x);
        return 0;
    }
    CHECK(busy >= 3, "a call on a model another thread is running was refused as busy (%d busy, %d ok)", busy, ok);
    CHECK(strstr(busy_message, "in use by another thread") != NULL, "message: %s", busy_message);
    CHECK(free_busy >= 1, "freeing a model another thread is running is refused");
    CHECK(other == 0 && atomic_load(&s.run_other) == 0, "only OK or busy: %d, %d", other, atomic_load(&s.run_other));
    CHECK(atomic_load(&s.runs) > 0, "the runner ran");
    /* Still alive and usable after the refused free; then freed once. */
    aimet_results_t *results = NULL;
    CHECK_OK(run_once(s.model, s.x, CHANNELS, SIDE, &results));
    CHECK_OK(aimet_results_free(results));
    CHECK_OK(aimet_model_free(s.model));
    free(s.x);
    return 1;
}

static void test_two_threads_on_one_model(void) {
    int rounds = 0;
    while (rounds < 3 && !two_threads_round()) rounds++;
    CHECK(rounds < 3, "a free landed between two runs three times in a row");
}

/* Two threads free the same model at the same moment: one frees it, the
 * other is refused (already freed, or busy with the first free). */
struct racer {
    aimet_model_t *model;
    pthread_barrier_t *barrier;
    aimet_status_t status;
};

static void *free_racer(void *arg) {
    struct racer *r = arg;
    pthread_barrier_wait(r->barrier);
    r->status = aimet_model_free(r->model);
    return NULL;
}

static void test_concurrent_double_free(void) {
    int exactly_one = 0, refused_properly = 0;
    const int rounds = 200;
    for (int k = 0; k < rounds; k++) {
        aimet_model_t *m = NULL;
        aimet_model_create(&m);
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, 2);
        struct racer a = {m, &barrier, 1}, b = {m, &barrier, 1};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, free_racer, &a);
        pthread_create(&tb, NULL, free_racer, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        pthread_barrier_destroy(&barrier);
        exactly_one += (a.status == AIMET_STATUS_OK) != (b.status == AIMET_STATUS_OK);
        aimet_status_t refused = a.status == AIMET_STATUS_OK ? b.status : a.status;
        refused_properly += refused == AIMET_STATUS_INVALID_HANDLE || refused == AIMET_STATUS_BUSY;
    }
    CHECK(exactly_one == rounds, "exactly one free succeeds: %d of %d", exactly_one, rounds);
    CHECK(refused_properly == rounds, "the other is refused: %d of %d", refused_properly, rounds);
}

static void test_status_strings(void) {
    CHECK(strstr(aimet_status_string(AIMET_STATUS_INVALID_HANDLE), "handle") != NULL, "invalid handle text");
    CHECK(strstr(aimet_status_string(AIMET_STATUS_BUSY), "another thread") != NULL, "busy text");
}

int main(void) {
    test_free_null();
    test_use_after_free_and_double_free();
    test_foreign_handles();
    test_two_threads_on_one_model();
    test_concurrent_double_free();
    test_status_strings();
    return report_results();
}
