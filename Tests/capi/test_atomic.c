/* "Nothing lost on failure": every transform through the C API either
 * completes or leaves the model (and the destination file) bit-identical to
 * before. Each test crafts an input that fails half-way — after the first
 * layer or pair has already been rewritten, or after the new file has been
 * partly written — and compares parameters, description, report and files
 * byte for byte. Build and run: make test-c. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* x[1,2,1,1] -> conv1 -> bn1 -> relu1 -> conv2 -> sigmoid -> conv3 -> bn3 -> relu3 -> conv4 -> y,
 * 1x1 convs over 2 channels, in two CLS groups (the Sigmoid ends the first).
 * conv3's weights are scaled by w3, its bias is b3, conv4's weights are
 * scaled by w4; bn3's running variance and epsilon are var3 (both). Without
 * `bns` the two BatchNormalization nodes are left out. */
static const char *const PARAMS[] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight",
                                     "conv3.bias", "conv4.weight", "conv4.bias", "bn1.weight", "bn1.bias",
                                     "bn1.mean", "bn1.var", "bn3.weight", "bn3.bias", "bn3.mean", "bn3.var"};
enum { NUM_PARAMS = sizeof PARAMS / sizeof PARAMS[0] };

static int add_conv(aimet_model_t *m, const char *name, const char *in, const char *out, float scale, float bias) {
    char w[32], b[32];
    snprintf(w, sizeof w, "%s.weight", name);
    snprintf(b, sizeof b, "%s.bias", name);
    const char *inputs[3] = {in, w, b}, *outputs[1] = {out};
    const float weight[4] = {1 * scale, -0.5f * scale, 0.25f * scale, 2 * scale}, biases[2] = {bias, -bias};
    const int64_t wshape[4] = {2, 2, 1, 1}, bshape[1] = {2};
    return aimet_model_add_node(m, "Conv", name, inputs, 3, outputs, 1) == AIMET_STATUS_OK &&
           aimet_model_set_param(m, w, weight, wshape, 4) == AIMET_STATUS_OK &&
           aimet_model_set_param(m, b, biases, bshape, 1) == AIMET_STATUS_OK;
}

static int add_bn(aimet_model_t *m, const char *name, const char *in, const char *out, float var) {
    char names[4][32];
    const char *suffix[4] = {"weight", "bias", "mean", "var"};
    for (int k = 0; k < 4; k++) snprintf(names[k], sizeof names[k], "%s.%s", name, suffix[k]);
    const char *inputs[5] = {in, names[0], names[1], names[2], names[3]}, *outputs[1] = {out};
    const float gamma[2] = {1.5f, 0.75f}, beta[2] = {0.5f, -0.25f}, mean[2] = {0.1f, -0.2f}, vars[2] = {var, var};
    const int64_t shape[1] = {2};
    return aimet_model_add_node(m, "BatchNormalization", name, inputs, 5, outputs, 1) == AIMET_STATUS_OK &&
           aimet_model_set_attr_float(m, name, "epsilon", var) == AIMET_STATUS_OK &&
           aimet_model_set_param(m, names[0], gamma, shape, 1) == AIMET_STATUS_OK &&
           aimet_model_set_param(m, names[1], beta, shape, 1) == AIMET_STATUS_OK &&
           aimet_model_set_param(m, names[2], mean, shape, 1) == AIMET_STATUS_OK &&
           aimet_model_set_param(m, names[3], vars, shape, 1) == AIMET_STATUS_OK;
}

static int add_op(aimet_model_t *m, const char *op, const char *name, const char *in, const char *out) {
    const char *inputs[1] = {in}, *outputs[1] = {out};
    return aimet_model_add_node(m, op, name, inputs, 1, outputs, 1) == AIMET_STATUS_OK;
}

static aimet_model_t *chain(float w3, float b3, float w4, float var3, int bns) {
    aimet_model_t *m = NULL;
    if (aimet_model_create(&m) != AIMET_STATUS_OK) return NULL;
    const int64_t xshape[4] = {1, 2, 1, 1};
    int ok = aimet_model_add_input(m, "x", xshape, 4) == AIMET_STATUS_OK && add_conv(m, "conv1", "x", "c1", 1, 0.5f) &&
             (bns ? add_bn(m, "bn1", "c1", "n1", 0.5f) : add_op(m, "Identity", "bn1", "c1", "n1")) &&
             add_op(m, "Relu", "relu1", "n1", "r1") &&
             add_conv(m, "conv2", "r1", "c2", 4, 0.25f) && add_op(m, "Sigmoid", "sigmoid", "c2", "s2") &&
             add_conv(m, "conv3", "s2", "c3", w3, b3) &&
             (bns ? add_bn(m, "bn3", "c3", "n3", var3) : add_op(m, "Identity", "bn3", "c3", "n3")) &&
             add_op(m, "Relu", "relu3", "n3", "r3") && add_conv(m, "conv4", "r3", "y", w4, 0) &&
             aimet_model_add_output(m, "y") == AIMET_STATUS_OK;
    if (!ok) {
        fprintf(stderr, "building the chain failed: %s\n", aimet_last_error());
        aimet_model_free(m);
        return NULL;
    }
    return m;
}

/* ---- snapshots ---- */

static char scratch[] = "/tmp/aimetcle-atomic-XXXXXX";

static char *path_in_scratch(const char *name) {
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", scratch, name);
    return p;
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = read_file(a, &na), *y = read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* Everything observable about a model: parameters (bits), description,
 * report, and the ONNX file it saves as. */
struct snapshot {
    float params[NUM_PARAMS][4];
    int present[NUM_PARAMS];
    char *describe, *report;
    char file[256];
};

static void take(struct snapshot *s, aimet_model_t *m, const char *file) {
    memset(s->params, 0, sizeof s->params);
    for (int k = 0; k < NUM_PARAMS; k++) {
        int32_t ndim = 0;
        int64_t shape[4];
        s->present[k] = aimet_model_param_shape(m, PARAMS[k], shape, 4, &ndim) == AIMET_STATUS_OK;
        int64_t count = 1;
        for (int d = 0; s->present[k] && d < ndim; d++) count *= shape[d];
        if (s->present[k]) s->present[k] = aimet_model_get_param(m, PARAMS[k], s->params[k], count) == AIMET_STATUS_OK;
    }
    s->describe = model_json(aimet_model_describe_json, m);
    s->report = model_json(aimet_model_report_json, m);
    snprintf(s->file, sizeof s->file, "%s", path_in_scratch(file));
    CHECK_OK(aimet_model_save_onnx(m, s->file));
}

static int same(const struct snapshot *a, const struct snapshot *b) {
    return memcmp(a->params, b->params, sizeof a->params) == 0 && memcmp(a->present, b->present, sizeof a->present) == 0 &&
           a->describe && b->describe && strcmp(a->describe, b->describe) == 0 && a->report && b->report &&
           strcmp(a->report, b->report) == 0 && same_file(a->file, b->file);
}

static void drop(struct snapshot *s) {
    free(s->describe);
    free(s->report);
}

/* ---- transforms ---- */

/* The first pair folds, the second (sigma = sqrt(0 + 0)) cannot. */
static void test_fold_fails_at_second_pair(void) {
    aimet_model_t *m = chain(1, 0.5f, 1, 0, 1);
    CHECK(m != NULL, "model");
    if (!m) return;
    struct snapshot before, after;
    take(&before, m, "fold-before.onnx");
    const char *layers[2] = {"conv1", "conv3"}, *bns[2] = {"bn1", "bn3"};
    const int32_t positions[2] = {AIMET_BN_AFTER_LAYER, AIMET_BN_AFTER_LAYER};
    aimet_status_t status = aimet_model_fold_batch_norms(m, layers, bns, positions, 2);
    CHECK(status != AIMET_STATUS_OK && strstr(aimet_last_error(), "bn3") != NULL, "fails at bn3: %d %s", status,
          aimet_last_error());
    take(&after, m, "fold-after.onnx");
    CHECK(same(&before, &after), "the failed fold left the model bit-identical");
    /* The first pair alone does fold: the failure above really came half-way. */
    CHECK_OK(aimet_model_fold_batch_norms(m, layers, bns, positions, 1));
    drop(&before);
    drop(&after);
    aimet_model_free(m);
}

/* CLS: the first group scales; in the second, conv3's bias divided by the
 * tiny factor sqrt(range3 / range4) overflows. Scaling alone (no BNs: an
 * unfolded BN would end the groups), then the whole of equalize. */
static void test_scale_fails_at_second_set(void) {
    const int32_t flag_sets[2] = {AIMET_EQUALIZE_NO_BN_FOLD | AIMET_EQUALIZE_NO_HIGH_BIAS_FOLD, AIMET_EQUALIZE_DEFAULT};
    for (int k = 0; k < 2; k++) {
        aimet_model_t *m = chain(1e-20f, 1e20f, 1e20f, 0.5f, k == 1);
        CHECK(m != NULL, "model");
        if (!m) return;
        struct snapshot before, after;
        take(&before, m, "scale-before.onnx");
        aimet_status_t status = aimet_model_equalize(m, flag_sets[k], NULL, 0, NULL, 0);
        CHECK(status == AIMET_STATUS_NUMERIC && strstr(aimet_last_error(), "conv3") != NULL,
              "flags %d: fails at conv3: %d %s", flag_sets[k], status, aimet_last_error());
        take(&after, m, "scale-after.onnx");
        CHECK(same(&before, &after), "flags %d: the failed equalize left the model bit-identical", flag_sets[k]);
        /* The first group alone does change: the failure came half-way. */
        const char *ends[1] = {"conv2"};
        CHECK_OK(aimet_model_equalize(m, flag_sets[k], NULL, 0, ends, 1));
        float w1[4];
        CHECK_OK(aimet_model_get_param(m, "conv1.weight", w1, 4));
        CHECK(memcmp(w1, before.params[0], sizeof w1) != 0, "flags %d: the first group alone is rewritten", flag_sets[k]);
        drop(&before);
        drop(&after);
        aimet_model_free(m);
    }
}

/* The buffer API: a triplet whose first pair scales and whose second
 * overflows leaves all three layers' buffers as they were. */
static void test_buffer_triplet_fails_at_second_pair(void) {
    float w1[4] = {1, 2, 3, 4}, b1[2] = {1, 1}, dw[2] = {1e-20f, 1e-20f}, bdw[2] = {1e20f, 1e20f};
    float w3[4] = {1e20f, 1e20f, 1e20f, 1e20f}, b3[2] = {0, 0};
    const int64_t s1[4] = {2, 2, 1, 1}, sdw[4] = {2, 1, 1, 1}, s3[4] = {2, 2, 1, 1};
    aimet_layer_t l1 = {AIMET_LAYER_CONV2D, 1, 0, 4, w1, s1, b1, 2, "l1"};
    aimet_layer_t l2 = {AIMET_LAYER_CONV2D, 2, 0, 4, dw, sdw, bdw, 2, "dw"};
    aimet_layer_t l3 = {AIMET_LAYER_CONV2D, 1, 0, 4, w3, s3, b3, 2, "l3"};
    aimet_layer_t *layers[3] = {&l1, &l2, &l3};
    float copy[6][4];
    memcpy(copy[0], w1, sizeof w1);
    memcpy(copy[1], b1, sizeof b1);
    memcpy(copy[2], dw, sizeof dw);
    memcpy(copy[3], bdw, sizeof bdw);
    memcpy(copy[4], w3, sizeof w3);
    memcpy(copy[5], b3, sizeof b3);
    float scales[4] = {-1, -1, -1, -1};
    aimet_status_t status = aimet_cls_scale_set(layers, 3, scales, 4);
    CHECK(status == AIMET_STATUS_NUMERIC, "triplet overflows: %d %s", status, aimet_last_error());
    CHECK(memcmp(copy[0], w1, sizeof w1) == 0 && memcmp(copy[1], b1, sizeof b1) == 0 &&
              memcmp(copy[2], dw, sizeof dw) == 0 && memcmp(copy[3], bdw, sizeof bdw) == 0 &&
              memcmp(copy[4], w3, sizeof w3) == 0 && memcmp(copy[5], b3, sizeof b3) == 0,
          "buffers untouched");
    CHECK(scales[0] == -1 && scales[3] == -1, "scales untouched");
}

/* ---- save ---- */

static int scratch_entries(void) { return folder_entries(scratch); }

/* A save that runs out of room half-way (a file size limit) leaves the old
 * file byte-identical and no temporary file behind. (A save whose rename
 * fails is tested in test_model.c.) */
static void test_save_fails_half_way(void) {
    aimet_model_t *m = chain(1, 0.5f, 1, 0.5f, 1);
    CHECK(m != NULL, "model");
    if (!m) return;
    const char *target = path_in_scratch("target.onnx");
    FILE *f = fopen(target, "wb");
    fputs("the previous contents", f);
    fclose(f);
    size_t old_size = 0;
    char *old = read_file(target, &old_size);
    int entries = scratch_entries();

    struct rlimit saved, limit;
    getrlimit(RLIMIT_FSIZE, &saved);
    limit = saved;
    limit.rlim_cur = 64; /* bytes: the model needs more than a thousand */
    void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &limit);
    aimet_status_t status = aimet_model_save_onnx(m, target);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, previous);

    CHECK(status == AIMET_STATUS_IO, "save fails: %d %s", status, aimet_last_error());
    size_t size = 0;
    char *now = read_file(target, &size);
    CHECK(now && size == old_size && memcmp(now, old, size) == 0, "old file intact");
    CHECK(scratch_entries() == entries, "no temporary file left (%d entries, %d before)", scratch_entries(), entries);
    free(old);
    free(now);

    aimet_model_free(m);
}

/* Two threads saving two models to one path: the file is always one model
 * whole, never a mix, and no temporary file is left. */
struct saver {
    aimet_model_t *model;
    const char *path;
    int failures;
};

static void *save_often(void *arg) {
    struct saver *s = arg;
    for (int k = 0; k < 20; k++) s->failures += aimet_model_save_onnx(s->model, s->path) != AIMET_STATUS_OK;
    return NULL;
}

static void test_concurrent_saves_to_one_path(void) {
    aimet_model_t *a = chain(1, 0.5f, 1, 0.5f, 1), *b = chain(2, 0.25f, 3, 0.5f, 0);
    CHECK(a && b, "models");
    if (!a || !b) return;
    const char *ref_a = path_in_scratch("ref-a.onnx"), *ref_b = path_in_scratch("ref-b.onnx");
    const char *shared = path_in_scratch("shared.onnx");
    CHECK_OK(aimet_model_save_onnx(a, ref_a));
    CHECK_OK(aimet_model_save_onnx(b, ref_b));
    int entries = scratch_entries();
    struct saver sa = {a, shared, 0}, sb = {b, shared, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, save_often, &sa);
    pthread_create(&tb, NULL, save_often, &sb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(sa.failures == 0 && sb.failures == 0, "every save succeeds: %d %d", sa.failures, sb.failures);
    CHECK(same_file(shared, ref_a) || same_file(shared, ref_b), "the file is one model, whole");
    CHECK(scratch_entries() == entries + 1, "no temporary file left");
    aimet_model_free(a);
    aimet_model_free(b);
}

static void remove_scratch(void) {
    DIR *d = opendir(scratch);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", scratch, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(scratch);
}

int main(void) {
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    test_fold_fails_at_second_pair();
    test_scale_fails_at_second_set();
    test_buffer_triplet_fails_at_second_pair();
    test_save_fails_half_way();
    test_concurrent_saves_to_one_path();
    remove_scratch();
    return report_results();
}
