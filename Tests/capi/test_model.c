/* C tests of the model-handle API of libaimetcle.so (Include/aimetcle.h).
 * Build and run: make test-c, which runs `test_model data/digits_mbv2.onnx`
 * (prints "N passed, N failed"; exit code 1 on any failure). */
#define _POSIX_C_SOURCE 200809L
#include "aimetcle.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static const char *model_path;
static char tmpdir[64];

/* A path in the test's temporary folder (static buffer, one at a time per slot). */
static const char *temp_path(int slot, const char *name) {
    static char paths[4][256];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", tmpdir, name);
    return paths[slot];
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t n = fwrite(data, 1, size, f);
    return fclose(f) == 0 && n == size;
}

/* describe_json / report_json, malloc'ed (NULL on error). */
static char *describe(aimet_model_t *m) { return model_json(aimet_model_describe_json, m); }

static char *report(aimet_model_t *m) { return model_json(aimet_model_report_json, m); }

static int count_of(const char *text, const char *needle) {
    int n = 0;
    if (!text) return -1;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* The nodes of op type `op` in describe_json. */
static int ops(aimet_model_t *m, const char *op) {
    char needle[64];
    snprintf(needle, sizeof needle, "\"op\":\"%s\"", op);
    char *text = describe(m);
    int n = count_of(text, needle);
    free(text);
    return n;
}

/* A parameter's values, malloc'ed; *count set (NULL if it cannot be read). */
static float *param(aimet_model_t *m, const char *name, int64_t *count) {
    int64_t shape[8];
    int32_t ndim = 0;
    if (aimet_model_param_shape(m, name, shape, 8, &ndim) != AIMET_STATUS_OK) return NULL;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *data = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (aimet_model_get_param(m, name, data, n) != AIMET_STATUS_OK) {
        free(data);
        return NULL;
    }
    *count = n;
    return data;
}

/* Parameter equal to the given values. */
static int param_is(aimet_model_t *m, const char *name, const float *expect, int64_t n) {
    int64_t count = 0;
    float *data = param(m, name, &count);
    int ok = data && count == n && all_close(data, expect, (int)n);
    if (data && !ok) {
        fprintf(stderr, "  %s =", name);
        for (int64_t i = 0; i < count; i++) fprintf(stderr, " %g", data[i]);
        fprintf(stderr, "\n");
    }
    free(data);
    return ok;
}

#define CONV0 "/features/features.0/features.0.0/Conv"
#define BN0 "/features/features.0/features.0.1/BatchNormalization"
#define CLIP0 "/features/features.0/features.0.2/Clip"
#define CONV1 "/features/features.1/conv/conv.0/conv.0.0/Conv"
#define BN1 "/features/features.1/conv/conv.0/conv.0.1/BatchNormalization"

/* ------------------------------------------------------------ load, describe */

static void test_load_and_describe(void) {
    aimet_model_t *m = NULL;
    CHECK_OK(aimet_model_load_onnx(model_path, &m));
    if (!m) return;

    /* describe_json: query the size, then fill. */
    int64_t length = -1;
    CHECK_OK(aimet_model_describe_json(m, NULL, 0, &length));
    CHECK(length > 1000, "length %lld", (long long)length);
    char small[16];
    memset(small, 'x', sizeof small);
    int64_t small_length = -1;
    CHECK_OK(aimet_model_describe_json(m, small, (int64_t)sizeof small, &small_length));
    CHECK(small_length == length, "too small: length %lld, expected %lld", (long long)small_length, (long long)length);
    int untouched = 1;
    for (size_t i = 0; i < sizeof small; i++) untouched &= small[i] == 'x';
    CHECK(untouched, "a too-small buffer was written");
    char *text = malloc((size_t)length);
    int64_t filled = -1;
    CHECK_OK(aimet_model_describe_json(m, text, length, &filled));
    CHECK(filled == length && strlen(text) + 1 == (size_t)length, "filled %lld, strlen %zu", (long long)filled,
          strlen(text));
    CHECK(text[0] == '{' && text[length - 2] == '}', "a JSON object");
    CHECK(count_of(text, "\"op\":\"Conv\"") == 14, "Conv count %d", count_of(text, "\"op\":\"Conv\""));
    CHECK(count_of(text, "\"op\":\"BatchNormalization\"") == 14, "BN count");
    CHECK(count_of(text, "\"op\":\"Clip\"") == 10, "Clip count");
    CHECK(count_of(text, "\"op\":\"Add\"") == 2, "Add count");
    CHECK(count_of(text, "\"op\":\"Gemm\"") == 1, "Gemm count");
    CHECK(strstr(text, "\"name\":\"" CONV1 "\"") != NULL, "long node names");
    CHECK(strstr(text, "{\"name\":\"input\",\"shape\":[-1,1,16,16]}") != NULL, "input with a free batch axis");
    CHECK(strstr(text, "{\"name\":\"logits\",\"shape\":[-1,10]}") != NULL, "output");
    CHECK(strstr(text, "{\"name\":\"features.0.0.weight\",\"shape\":[16,1,3,3]}") != NULL, "param shapes");
    free(text);
    /* An exact-size buffer is enough; one byte less is not. */
    char *exact = malloc((size_t)length);
    memset(exact, 'x', (size_t)length);
    CHECK_OK(aimet_model_describe_json(m, exact, length - 1, &filled));
    CHECK(exact[0] == 'x' && filled == length, "one byte short: not written");
    free(exact);
    CHECK_ERROR(aimet_model_describe_json(m, NULL, 0, NULL), AIMET_STATUS_NULL_POINTER, "length");

    /* param_shape / get_param of a conv weight. */
    int64_t shape[4] = {0, 0, 0, 0};
    int32_t ndim = 0;
    CHECK_OK(aimet_model_param_shape(m, "features.0.0.weight", shape, 4, &ndim));
    CHECK(ndim == 4 && shape[0] == 16 && shape[1] == 1 && shape[2] == 3 && shape[3] == 3, "shape %lld %lld %lld %lld",
          (long long)shape[0], (long long)shape[1], (long long)shape[2], (long long)shape[3]);
    int64_t partial[4] = {-7, -7, -7, -7};
    CHECK_OK(aimet_model_param_shape(m, "features.0.0.weight", partial, 2, &ndim));
    CHECK(ndim == 4 && partial[0] == 16 && partial[1] == 1 && partial[2] == -7, "capacity 2 writes 2 dims");
    CHECK_OK(aimet_model_param_shape(m, "features.0.0.weight", NULL, 0, &ndim));
    CHECK(ndim == 4, "rank only");
    float w[144];
    CHECK_OK(aimet_model_get_param(m, "features.0.0.weight", w, 144));
    /* Values as numpy reads them from the file. */
    CHECK(w[0] == -0.0163045022636652f && w[1] == 0.13153818249702454f && w[2] == -0.3050266206264496f,
          "w = %.9g %.9g %.9g", w[0], w[1], w[2]);
    double sum = 0;
    for (int i = 0; i < 144; i++) sum += w[i];
    CHECK(fabs(sum - -1.4760689735412598) < 1e-4, "sum %g", sum);

    float saved[144];
    memcpy(saved, w, sizeof w);
    CHECK_ERROR(aimet_model_get_param(m, "features.0.0.weight", w, 143), AIMET_STATUS_SHAPE_MISMATCH,
                "has 144 elements");
    CHECK_ERROR(aimet_model_get_param(m, "features.0.0.weight", w, 145), AIMET_STATUS_SHAPE_MISMATCH, "145");
    CHECK(memcmp(saved, w, sizeof w) == 0, "a wrong count writes nothing");
    CHECK_ERROR(aimet_model_get_param(m, "features.0.0.nope", w, 144), AIMET_STATUS_UNKNOWN_NAME,
                "no parameter named 'features.0.0.nope'");
    CHECK_ERROR(aimet_model_param_shape(m, "nope", shape, 4, &ndim), AIMET_STATUS_UNKNOWN_NAME, "nope");
    CHECK_ERROR(aimet_model_get_param(m, "features.0.0.weight", NULL, 144), AIMET_STATUS_NULL_POINTER, "data");
    CHECK_ERROR(aimet_model_param_shape(m, "features.0.0.weight", shape, 4, NULL), AIMET_STATUS_NULL_POINTER, "ndim");
    CHECK_ERROR(aimet_model_get_param(m, NULL, w, 144), AIMET_STATUS_NULL_POINTER, "name");

    /* A fresh model has an empty report. */
    int32_t folded = -1, relu6 = -1, cls = -1, hbf = -1;
    CHECK_OK(aimet_model_report_counts(m, &folded, &relu6, &cls, &hbf));
    CHECK(folded == 0 && relu6 == 0 && cls == 0 && hbf == 0, "empty report");

    /* load_onnx_bytes gives the same model. */
    size_t size = 0;
    char *bytes = read_file(model_path, &size);
    aimet_model_t *m2 = NULL;
    CHECK_OK(aimet_model_load_onnx_bytes(bytes, (int64_t)size, &m2));
    char *a = describe(m), *b = describe(m2);
    CHECK(a && b && strcmp(a, b) == 0, "same description from bytes");
    free(a);
    free(b);
    free(bytes);
    aimet_model_free(m2);
    aimet_model_free(m);
}

/* ----------------------------------------------------------------- equalize */

static void test_equalize_digits(void) {
    aimet_model_t *m = NULL;
    CHECK_OK(aimet_model_load_onnx(model_path, &m));
    if (!m) return;
    CHECK_OK(aimet_model_equalize(m, AIMET_EQUALIZE_DEFAULT, NULL, 0, NULL, 0));
    int32_t folded = -1, relu6 = -1, cls = -1, hbf = -1;
    CHECK_OK(aimet_model_report_counts(m, &folded, &relu6, &cls, &hbf));
    CHECK(folded == 14, "folded %d", folded);
    CHECK(relu6 == 10, "relu6 %d", relu6);
    CHECK(cls == 5, "cls sets %d", cls);
    CHECK(hbf == 9, "high-bias folded %d", hbf);
    CHECK_OK(aimet_model_report_counts(m, NULL, NULL, &cls, NULL));
    CHECK(cls == 5, "NULL count pointers are skipped");

    char *r = report(m);
    CHECK(r != NULL, "report_json");
    if (r) {
        CHECK(strstr(r, "{\"layer\":\"" CONV0 "\",\"batchnorm\":\"" BN0 "\",\"position\":\"after\"}") != NULL,
              "folded pair in the report: %.300s", r);
        CHECK(strstr(r, "\"/features/features.5/features.5.1/BatchNormalization\"") != NULL, "last BN");
        CHECK(strstr(r, "\"relu6_replaced\":[\"" CLIP0 "\"") != NULL, "relu6 names");
        CHECK(strstr(r, "\"layers\":[\"" CONV1 "\",\"/features/features.1/conv/conv.1/conv.1.0/Conv\","
                        "\"/features/features.1/conv/conv.2/Conv\"]") != NULL,
              "first CLS set is the features.1 triplet");
        CHECK(strstr(r, "\"relu_between\":[true,true]") != NULL, "relu flags");
        CHECK(strstr(r, "\"relu_between\":[false]") != NULL, "the project -> conv pair has no relu");
        CHECK(count_of(r, "\"kind\":") == 5, "5 sets in the json");
        char expect[64];
        snprintf(expect, sizeof expect, "\"high_bias_folded\":%d", hbf);
        CHECK(strstr(r, expect) != NULL, "hbf count in the json");
    }
    free(r);

    CHECK(ops(m, "BatchNormalization") == 0 && ops(m, "Clip") == 0 && ops(m, "Relu") == 10 && ops(m, "Conv") == 14,
          "equalized graph");
    int64_t shape[1] = {0};
    int32_t ndim = 0;
    CHECK_OK(aimet_model_param_shape(m, "features.0.0.bias", shape, 1, &ndim));
    CHECK(ndim == 1 && shape[0] == 16, "the folded conv gained a bias");
    CHECK_ERROR(aimet_model_param_shape(m, "features.0.1.running_var", shape, 1, &ndim), AIMET_STATUS_UNKNOWN_NAME,
                "running_var");

    /* Save, reload: the same graph and parameters. */
    const char *saved = temp_path(0, "digits_cle.onnx");
    CHECK_OK(aimet_model_save_onnx(m, saved));
    CHECK(file_exists(saved), "saved");
    aimet_model_t *back = NULL;
    CHECK_OK(aimet_model_load_onnx(saved, &back));
    if (back) {
        CHECK(ops(back, "BatchNormalization") == 0, "reloaded: no BatchNormalization");
        CHECK(ops(back, "Conv") == 14, "reloaded: 14 Conv");
        CHECK(ops(back, "Relu") == 10 && ops(back, "Clip") == 0, "reloaded: ReLU");
        char *a = describe(m), *b = describe(back);
        CHECK(a && b && strcmp(a, b) == 0, "reloaded description equals the saved model's");
        free(a);
        free(b);
        int64_t n1 = 0, n2 = 0;
        float *w1 = param(m, "features.4.conv.2.weight", &n1), *w2 = param(back, "features.4.conv.2.weight", &n2);
        CHECK(w1 && w2 && n1 == n2 && memcmp(w1, w2, sizeof(float) * (size_t)n1) == 0, "weights survive a save");
        free(w1);
        free(w2);
        /* Equalizing again finds nothing to fold or replace. */
        CHECK_OK(aimet_model_equalize(back, AIMET_EQUALIZE_DEFAULT, NULL, 0, NULL, 0));
        CHECK_OK(aimet_model_report_counts(back, &folded, &relu6, &cls, &hbf));
        CHECK(folded == 0 && relu6 == 0 && cls == 5 && hbf == 0, "second pass: %d %d %d %d", folded, relu6, cls, hbf);
        aimet_model_free(back);
    }
    unlink(saved);
    aimet_model_free(m);

    /* Flags: keep ReLU6, no scaling. */
    CHECK_OK(aimet_model_load_onnx(model_path, &m));
    CHECK_OK(aimet_model_equalize(m, AIMET_EQUALIZE_KEEP_RELU6 | AIMET_EQUALIZE_NO_SCALE, NULL, 0, NULL, 0));
    CHECK_OK(aimet_model_report_counts(m, &folded, &relu6, &cls, &hbf));
    CHECK(folded == 14 && relu6 == 0 && cls == 0 && hbf == 0, "flags: %d %d %d %d", folded, relu6, cls, hbf);
    CHECK(ops(m, "Clip") == 10, "ReLU6 kept");
    aimet_model_free(m);

    /* A region: only the first block. */
    CHECK_OK(aimet_model_load_onnx(model_path, &m));
    const char *outputs[1] = {CLIP0};
    CHECK_OK(aimet_model_equalize(m, AIMET_EQUALIZE_DEFAULT, NULL, 0, outputs, 1));
    CHECK_OK(aimet_model_report_counts(m, &folded, &relu6, &cls, &hbf));
    CHECK(folded == 1 && relu6 == 1 && cls == 0, "region: %d %d %d", folded, relu6, cls);
    aimet_model_free(m);
}

/* --------------------------------------------------------------- atomicity */

static void test_atomicity(void) {
    aimet_model_t *m = NULL;
    CHECK_OK(aimet_model_load_onnx(model_path, &m));
    if (!m) return;
    char *before = describe(m);
    int64_t n = 0;
    float *w_before = param(m, "features.0.0.weight", &n);

    const char *layers[2] = {CONV0, "no-such-conv"};
    const char *bns[2] = {BN0, BN1};
    const int32_t positions[2] = {AIMET_BN_AFTER_LAYER, AIMET_BN_AFTER_LAYER};
    CHECK_ERROR(aimet_model_fold_batch_norms(m, layers + 1, bns + 1, positions, 1), AIMET_STATUS_UNKNOWN_NAME,
                "no node named 'no-such-conv'");
    /* The first pair is valid, the second names an unknown node: nothing of it stays. */
    CHECK_ERROR(aimet_model_fold_batch_norms(m, layers, bns, positions, 2), AIMET_STATUS_UNKNOWN_NAME, "no-such-conv");
    /* The second of the pair is a Clip, not a BN. */
    const char *clip[1] = {CLIP0};
    CHECK_ERROR(aimet_model_fold_batch_norms(m, layers, clip, positions, 1), AIMET_STATUS_UNSUPPORTED,
                "not an inference-mode BatchNormalization");
    /* A BN that does not follow that conv. */
    const char *wrong[2] = {CONV0, BN1};
    CHECK_ERROR(aimet_model_fold_batch_norms(m, wrong, wrong + 1, positions, 1), AIMET_STATUS_UNSUPPORTED,
                "does not feed only");
    const int32_t bad_position[1] = {5};
    CHECK_ERROR(aimet_model_fold_batch_norms(m, layers, bns, bad_position, 1), AIMET_STATUS_INVALID_ARGUMENT,
                "position");
    CHECK_ERROR(aimet_model_fold_batch_norms(m, layers, bns, NULL, 1), AIMET_STATUS_NULL_POINTER, "positions");
    const char *unknown[1] = {"no-such-start"};
    CHECK_ERROR(aimet_model_equalize(m, AIMET_EQUALIZE_DEFAULT, unknown, 1, NULL, 0), AIMET_STATUS_UNKNOWN_NAME,
                "no node or value named 'no-such-start'");
    CHECK_ERROR(aimet_model_equalize(m, AIMET_EQUALIZE_DEFAULT, NULL, 0, unknown, 1), AIMET_STATUS_UNKNOWN_NAME,
                "no-such-start");
    CHECK_ERROR(aimet_model_equalize(m, 16, NULL, 0, NULL, 0), AIMET_STATUS_INVALID_ARGUMENT, "unknown flag bits 16");
    CHECK_ERROR(aimet_model_equalize(m, -1, NULL, 0, NULL, 0), AIMET_STATUS_INVALID_ARGUMENT, "unknown flag bits");
    CHECK_ERROR(aimet_model_replace_relu6(m, unknown, 1), AIMET_STATUS_UNKNOWN_NAME, "no-such-start");

    char *after = describe(m);
    CHECK(before && after && strcmp(before, after) == 0, "failed transforms leave the graph unchanged");
    int64_t n2 = 0;
    float *w_after = param(m, "features.0.0.weight", &n2);
    CHECK(w_before && w_after && n == n2 && memcmp(w_before, w_after, sizeof(float) * (size_t)n) == 0,
          "failed transforms leave the weights unchanged");
    free(after);
    free(w_after);

    /* The valid pair alone folds. */
    CHECK_OK(aimet_model_fold_batch_norms(m, layers, bns, positions, 1));
    int32_t folded = -1;
    CHECK_OK(aimet_model_report_counts(m, &folded, NULL, NULL, NULL));
    CHECK(folded == 1 && ops(m, "BatchNormalization") == 13, "one fold");
    free(before);
    free(w_before);
    aimet_model_free(m);
}

/* ------------------------------------------------------------ hand-built model */

/* x[1,2,1,1] -> conv1 (1x1, 2->2, no bias) -> bn -> relu -> conv2 (1x1, 2->2, bias) -> y */
static aimet_model_t *build_small(void) {
    aimet_model_t *m = NULL;
    if (aimet_model_create(&m) != AIMET_STATUS_OK) return NULL;
    const int64_t xshape[4] = {-1, 2, 1, 1};
    const int64_t k11[2] = {1, 1}, pads[4] = {0, 0, 0, 0}, strides[2] = {1, 1};
    const char *conv1_in[2] = {"x", "conv1.weight"}, *conv1_out[1] = {"c1"};
    const char *bn_in[5] = {"c1", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"}, *bn_out[1] = {"b1"};
    const char *relu_in[1] = {"b1"}, *relu_out[1] = {"r1"};
    const char *conv2_in[3] = {"r1", "conv2.weight", "conv2.bias"}, *conv2_out[1] = {"y"};
    int ok = aimet_model_add_input(m, "x", xshape, 4) == AIMET_STATUS_OK &&
             aimet_model_add_node(m, "Conv", "conv1", conv1_in, 2, conv1_out, 1) == AIMET_STATUS_OK &&
             aimet_model_set_attr_ints(m, "conv1", "kernel_shape", k11, 2) == AIMET_STATUS_OK &&
             aimet_model_set_attr_ints(m, "conv1", "pads", pads, 4) == AIMET_STATUS_OK &&
             aimet_model_set_attr_ints(m, "conv1", "strides", strides, 2) == AIMET_STATUS_OK &&
             aimet_model_set_attr_int(m, "conv1", "group", 1) == AIMET_STATUS_OK &&
             aimet_model_add_node(m, "BatchNormalization", "bn", bn_in, 5, bn_out, 1) == AIMET_STATUS_OK &&
             aimet_model_set_attr_float(m, "bn", "epsilon", 1.0f) == AIMET_STATUS_OK &&
             aimet_model_add_node(m, "Relu", "relu", relu_in, 1, relu_out, 1) == AIMET_STATUS_OK &&
             aimet_model_add_node(m, "Conv", "conv2", conv2_in, 3, conv2_out, 1) == AIMET_STATUS_OK &&
             aimet_model_set_attr_ints(m, "conv2", "kernel_shape", k11, 2) == AIMET_STATUS_OK &&
             aimet_model_add_output(m, "y") == AIMET_STATUS_OK;
    /* W1 = [[1,2],[3,4]]; BN gamma [4,1.5], beta [13,5], mean [0.5,2], var [3,8], eps 1
     * → s = gamma/sqrt(var+eps) = [2, 0.5]. W2 = [[1,8],[1,2]], b2 = [0.25,-1]. */
    const float w1[4] = {1, 2, 3, 4}, gamma[2] = {4, 1.5f}, beta[2] = {13, 5}, mean[2] = {0.5f, 2}, var[2] = {3, 8};
    const float w2[4] = {1, 8, 1, 2}, b2[2] = {0.25f, -1};
    const int64_t wshape[4] = {2, 2, 1, 1}, vshape[1] = {2};
    ok = ok && aimet_model_set_param(m, "conv1.weight", w1, wshape, 4) == AIMET_STATUS_OK &&
         aimet_model_set_param(m, "bn.weight", gamma, vshape, 1) == AIMET_STATUS_OK &&
         aimet_model_set_param(m, "bn.bias", beta, vshape, 1) == AIMET_STATUS_OK &&
         aimet_model_set_param(m, "bn.running_mean", mean, vshape, 1) == AIMET_STATUS_OK &&
         aimet_model_set_param(m, "bn.running_var", var, vshape, 1) == AIMET_STATUS_OK &&
         aimet_model_set_param(m, "conv2.weight", w2, wshape, 4) == AIMET_STATUS_OK &&
         aimet_model_set_param(m, "conv2.bias", b2, vshape, 1) == AIMET_STATUS_OK;
    if (!ok) {
        fprintf(stderr, "building the small model failed: %s\n", aimet_last_error());
        aimet_model_free(m);
        return NULL;
    }
    return m;
}

static void test_built_model(void) {
    aimet_model_t *m = build_small();
    CHECK(m != NULL, "built");
    if (!m) return;
    char *text = describe(m);
    CHECK(text && strstr(text, "\"name\":\"conv1\",\"op\":\"Conv\",\"inputs\":[\"x\",\"conv1.weight\"],"
                               "\"outputs\":[\"c1\"],\"attributes\":{\"group\":1,\"kernel_shape\":[1,1],"
                               "\"pads\":[0,0,0,0],\"strides\":[1,1]}") != NULL,
          "conv1 as built: %s", text ? text : "(null)");
    CHECK(text && strstr(text, "\"attributes\":{\"epsilon\":1.0}") != NULL, "bn epsilon");
    CHECK(text && strstr(text, "\"inputs\":[{\"name\":\"x\",\"shape\":[-1,2,1,1]}]") != NULL, "input");
    free(text);

    /* BN fold only: W1' = W1 * s per out channel, b1' = beta - mean * s. */
    CHECK_OK(aimet_model_equalize(m, AIMET_EQUALIZE_NO_SCALE, NULL, 0, NULL, 0));
    int32_t folded = -1, relu6 = -1, cls = -1, hbf = -1;
    CHECK_OK(aimet_model_report_counts(m, &folded, &relu6, &cls, &hbf));
    CHECK(folded == 1 && relu6 == 0 && cls == 0 && hbf == 0, "bn fold only: %d %d %d %d", folded, relu6, cls, hbf);
    CHECK(param_is(m, "conv1.weight", (float[]){2, 4, 1.5f, 2}, 4), "W1 folded");
    CHECK(param_is(m, "conv1.bias", (float[]){12, 4}, 2), "b1 = beta - mean*s = [12, 4]");
    CHECK(param_is(m, "conv2.weight", (float[]){1, 8, 1, 2}, 4) && param_is(m, "conv2.bias", (float[]){0.25f, -1}, 2),
          "conv2 untouched");
    CHECK(ops(m, "BatchNormalization") == 0, "the BN node is gone");
    char *r = report(m);
    CHECK(r && strstr(r, "{\"layer\":\"conv1\",\"batchnorm\":\"bn\",\"position\":\"after\"}") != NULL, "report: %s",
          r ? r : "(null)");
    free(r);
    aimet_model_free(m);

    /* Everything. CLS: r1 = row max of W1' = [4, 2], r2 = column max of W2 = [1, 8]
     * → S = sqrt(r1/r2) = [2, 0.5]; W1'' = W1'/S = [[1,2],[3,4]], b1'' = b1'/S = [6, 8],
     * W2'' = W2 * S (columns) = [[2,4],[2,1]].
     * High-bias fold (ReLU between): c = max(0, beta/S - 3|gamma|/S) = [0.5, 1];
     * b1 = [5.5, 7]; b2 += W2'' @ c = [5, 2] → [5.25, 1]. */
    m = build_small();
    if (!m) return;
    CHECK_OK(aimet_model_equalize(m, AIMET_EQUALIZE_DEFAULT, NULL, 0, NULL, 0));
    CHECK_OK(aimet_model_report_counts(m, &folded, &relu6, &cls, &hbf));
    CHECK(folded == 1 && relu6 == 0 && cls == 1 && hbf == 1, "all: %d %d %d %d", folded, relu6, cls, hbf);
    CHECK(param_is(m, "conv1.weight", (float[]){1, 2, 3, 4}, 4), "W1 after CLS");
    CHECK(param_is(m, "conv2.weight", (float[]){2, 4, 2, 1}, 4), "W2 after CLS");
    CHECK(param_is(m, "conv1.bias", (float[]){5.5f, 7}, 2), "b1 after CLS and high-bias fold");
    CHECK(param_is(m, "conv2.bias", (float[]){5.25f, 1}, 2), "b2 after high-bias fold");
    r = report(m);
    CHECK(r && strstr(r, "\"cls_sets\":[{\"kind\":\"pair\",\"layers\":[\"conv1\",\"conv2\"],"
                         "\"relu_between\":[true]") != NULL && strstr(r, "\"scale_min\":[0.5],\"scale_max\":[2.0]") != NULL
              && strstr(r, "{\"node\":\"conv1\",\"weight\":\"conv1.weight\",\"bias\":\"conv1.bias\"}") != NULL,
          "report: %s", r ? r : "(null)");
    {
        float scales[2] = {0, 0};
        int64_t count = 0;
        CHECK_OK(aimet_model_report_scales(m, 0, 0, NULL, 0, &count));
        CHECK(count == 2, "two factors, got %lld", (long long)count);
        CHECK_OK(aimet_model_report_scales(m, 0, 0, scales, 2, &count));
        CHECK(scales[0] == 2.0f && scales[1] == 0.5f, "S = %g %g", scales[0], scales[1]);
        CHECK_ERROR(aimet_model_report_scales(m, 1, 0, scales, 2, &count), AIMET_STATUS_INVALID_ARGUMENT, "set 1 is out of range");
        CHECK_ERROR(aimet_model_report_scales(m, 0, 1, scales, 2, &count), AIMET_STATUS_INVALID_ARGUMENT, "pair 1 is out of range");
        CHECK_ERROR(aimet_model_report_scales(m, 0, 0, scales, 2, NULL), AIMET_STATUS_NULL_POINTER, "count");
    }
    CHECK(r && strstr(r, "\"high_bias_folded\":1") != NULL, "hbf in the report");
    free(r);

    /* A built model saves as ONNX and loads back. */
    const char *path = temp_path(0, "small.onnx");
    CHECK_OK(aimet_model_save_onnx(m, path));
    aimet_model_t *back = NULL;
    CHECK_OK(aimet_model_load_onnx(path, &back));
    if (back) {
        CHECK(ops(back, "Conv") == 2 && ops(back, "Relu") == 1, "reloaded small model");
        CHECK(param_is(back, "conv2.bias", (float[]){5.25f, 1}, 2), "reloaded b2");
        aimet_model_free(back);
    }
    unlink(path);
    aimet_model_free(m);

    /* Building errors. */
    CHECK_OK(aimet_model_create(&m));
    const char *in[1] = {"x"}, *out[1] = {"y"};
    CHECK_OK(aimet_model_add_node(m, "Relu", "r", in, 1, out, 1));
    CHECK_ERROR(aimet_model_add_node(m, "Relu", "r", in, 1, out, 1), AIMET_STATUS_INVALID_ARGUMENT, "already has a node");
    CHECK_ERROR(aimet_model_add_node(m, "Relu", "r2", in, 1, out, 0), AIMET_STATUS_INVALID_ARGUMENT, "at least one output");
    CHECK_ERROR(aimet_model_set_attr_int(m, "nope", "group", 1), AIMET_STATUS_UNKNOWN_NAME, "no node named 'nope'");
    const float nan_values[1] = {NAN};
    const int64_t one[1] = {1};
    CHECK_ERROR(aimet_model_set_param(m, "p", nan_values, one, 1), AIMET_STATUS_NUMERIC, "not finite");
    CHECK_ERROR(aimet_model_set_param(m, "p", NULL, one, 1), AIMET_STATUS_NULL_POINTER, "data");
    /* An overflowing shape is an error, also when a later 0 makes the product 0 (it used to trap). */
    const int64_t huge[3] = {(int64_t)1 << 40, (int64_t)1 << 40, 0}, negative[2] = {2, -1};
    CHECK_ERROR(aimet_model_set_param(m, "p", nan_values, huge, 3), AIMET_STATUS_INVALID_ARGUMENT, "too large");
    CHECK_ERROR(aimet_model_set_param(m, "p", nan_values, huge, 2), AIMET_STATUS_INVALID_ARGUMENT, "too large");
    CHECK_ERROR(aimet_model_set_param(m, "p", nan_values, negative, 2), AIMET_STATUS_SHAPE_MISMATCH, "negative");
    const int64_t zero[2] = {0, 3};
    CHECK_OK(aimet_model_set_param(m, "p", nan_values, zero, 2));
    int64_t zshape[2] = {-1, -1};
    int32_t zndim = 0;
    CHECK(aimet_model_param_shape(m, "p", zshape, 2, &zndim) == AIMET_STATUS_OK && zndim == 2 && zshape[0] == 0 &&
              zshape[1] == 3,
          "an empty parameter");
    CHECK_OK(aimet_model_get_param(m, "p", (float[1]){0}, 0));
    /* x is read but never defined: equalize and save refuse the graph. */
    CHECK_ERROR(aimet_model_equalize(m, 0, NULL, 0, NULL, 0), AIMET_STATUS_INVALID_ARGUMENT, "reads 'x'");
    aimet_model_free(m);
}

/* x -> conv -> Clip(min=0, max=6 as attributes) -> y */
static aimet_model_t *build_clip(float lo, float hi) {
    aimet_model_t *m = NULL;
    if (aimet_model_create(&m) != AIMET_STATUS_OK) return NULL;
    const int64_t xshape[4] = {1, 1, 2, 2}, wshape[4] = {1, 1, 1, 1};
    const float w[1] = {2};
    const char *conv_in[2] = {"x", "w"}, *conv_out[1] = {"c"}, *clip_in[1] = {"c"}, *clip_out[1] = {"y"};
    int ok = aimet_model_add_input(m, "x", xshape, 4) == AIMET_STATUS_OK &&
             aimet_model_add_node(m, "Conv", "conv", conv_in, 2, conv_out, 1) == AIMET_STATUS_OK &&
             aimet_model_add_node(m, "Clip", "clip", clip_in, 1, clip_out, 1) == AIMET_STATUS_OK &&
             aimet_model_set_attr_float(m, "clip", "min", lo) == AIMET_STATUS_OK &&
             aimet_model_set_attr_float(m, "clip", "max", hi) == AIMET_STATUS_OK &&
             aimet_model_add_output(m, "y") == AIMET_STATUS_OK &&
             aimet_model_set_param(m, "w", w, wshape, 4) == AIMET_STATUS_OK;
    if (!ok) {
        fprintf(stderr, "building the clip model failed: %s\n", aimet_last_error());
        aimet_model_free(m);
        return NULL;
    }
    return m;
}

static void test_replace_relu6(void) {
    aimet_model_t *m = build_clip(0, 6);
    CHECK(m != NULL, "built");
    if (!m) return;
    int32_t relu6 = -1;
    CHECK_OK(aimet_model_replace_relu6(m, NULL, 0));
    CHECK_OK(aimet_model_report_counts(m, NULL, &relu6, NULL, NULL));
    CHECK(relu6 == 1 && ops(m, "Clip") == 0 && ops(m, "Relu") == 1, "replaced: %d", relu6);
    char *text = describe(m);
    CHECK(text && strstr(text, "\"name\":\"clip\",\"op\":\"Relu\",\"inputs\":[\"c\"],\"outputs\":[\"y\"],"
                               "\"attributes\":{}") != NULL,
          "a plain Relu: %s", text ? text : "(null)");
    free(text);
    aimet_model_free(m);

    /* By name; a Clip(0, 5) is not a ReLU6. */
    m = build_clip(0, 6);
    const char *names[1] = {"clip"};
    CHECK_OK(aimet_model_replace_relu6(m, names, 1));
    CHECK_OK(aimet_model_report_counts(m, NULL, &relu6, NULL, NULL));
    CHECK(relu6 == 1 && ops(m, "Relu") == 1, "replaced by name");
    aimet_model_free(m);
    m = build_clip(0, 5);
    CHECK_OK(aimet_model_replace_relu6(m, NULL, 0));
    CHECK_OK(aimet_model_report_counts(m, NULL, &relu6, NULL, NULL));
    CHECK(relu6 == 0 && ops(m, "Clip") == 1, "Clip(0, 5) stays");
    aimet_model_free(m);

    /* Attribute bounds are written as inputs for opset 17; they are still a ReLU6 after a reload. */
    m = build_clip(0, 6);
    const char *path = temp_path(0, "clip.onnx");
    CHECK_OK(aimet_model_save_onnx(m, path));
    aimet_model_t *back = NULL;
    CHECK_OK(aimet_model_load_onnx(path, &back));
    if (back) {
        char *d = describe(back);
        CHECK(d && strstr(d, "\"op\":\"Clip\",\"inputs\":[\"c\",\"clip_min\",\"clip_max\"]") != NULL,
              "bounds as inputs: %s", d ? d : "(null)");
        free(d);
        CHECK_OK(aimet_model_replace_relu6(back, NULL, 0));
        CHECK_OK(aimet_model_report_counts(back, NULL, &relu6, NULL, NULL));
        CHECK(relu6 == 1 && ops(back, "Relu") == 1, "reloaded Clip replaced");
        int64_t shape[1];
        int32_t ndim;
        CHECK_ERROR(aimet_model_param_shape(back, "clip_min", shape, 1, &ndim), AIMET_STATUS_UNKNOWN_NAME,
                    "clip_min");
        aimet_model_free(back);
    }
    unlink(path);
    aimet_model_free(m);
}

/* ------------------------------------------------------------------- errors */

static void test_errors(void) {
    aimet_model_t *m = (aimet_model_t *)0x1; /* must not be touched on error */
    aimet_model_t *const sentinel = m;

    CHECK_ERROR(aimet_model_load_onnx(temp_path(0, "missing.onnx"), &m), AIMET_STATUS_FILE_NOT_FOUND, "no such file");
    CHECK(m == sentinel, "out untouched");

    /* The first 100 bytes of the model. */
    size_t size = 0;
    char *bytes = read_file(model_path, &size);
    const char *truncated = temp_path(0, "truncated.onnx");
    CHECK(bytes && size > 100 && write_file(truncated, bytes, 100), "wrote %s", truncated);
    CHECK_ERROR(aimet_model_load_onnx(truncated, &m), AIMET_STATUS_FORMAT, "truncated.onnx");
    CHECK_ERROR(aimet_model_load_onnx_bytes(bytes, 100, &m), AIMET_STATUS_FORMAT, "not a valid ONNX model");
    CHECK_ERROR(aimet_model_load_onnx_bytes(bytes, size / 2, &m), AIMET_STATUS_FORMAT, "truncated");
    unlink(truncated);
    free(bytes);

    const char *garbage = temp_path(0, "garbage.onnx");
    const char junk[] = "this is not an ONNX model at all\n\xff\xfe\x00\x01";
    CHECK(write_file(garbage, junk, sizeof junk), "wrote garbage");
    CHECK_ERROR(aimet_model_load_onnx(garbage, &m), AIMET_STATUS_FORMAT, "not a valid ONNX model");
    unlink(garbage);

    const char *empty = temp_path(0, "empty.onnx");
    CHECK(write_file(empty, "", 0), "wrote empty");
    CHECK_ERROR(aimet_model_load_onnx(empty, &m), AIMET_STATUS_FORMAT, "empty");
    unlink(empty);

    CHECK_ERROR(aimet_model_load_onnx(tmpdir, &m), AIMET_STATUS_IO, "not a regular file");
    CHECK(m == sentinel, "out untouched by errors");

    CHECK_ERROR(aimet_model_load_onnx(model_path, NULL), AIMET_STATUS_NULL_POINTER, "out");
    CHECK_ERROR(aimet_model_load_onnx(NULL, &m), AIMET_STATUS_NULL_POINTER, "path");
    CHECK_ERROR(aimet_model_load_onnx_bytes(NULL, 10, &m), AIMET_STATUS_NULL_POINTER, "data");
    CHECK_ERROR(aimet_model_load_onnx_bytes("x", -1, &m), AIMET_STATUS_INVALID_ARGUMENT, "negative");
    CHECK_ERROR(aimet_model_create(NULL), AIMET_STATUS_NULL_POINTER, "out");
    int64_t length;
    int32_t count;
    CHECK_ERROR(aimet_model_describe_json(NULL, NULL, 0, &length), AIMET_STATUS_NULL_POINTER, "model");
    CHECK_ERROR(aimet_model_report_json(NULL, NULL, 0, &length), AIMET_STATUS_NULL_POINTER, "model");
    CHECK_ERROR(aimet_model_report_counts(NULL, &count, NULL, NULL, NULL), AIMET_STATUS_NULL_POINTER, "model");
    CHECK_ERROR(aimet_model_equalize(NULL, 0, NULL, 0, NULL, 0), AIMET_STATUS_NULL_POINTER, "model");
    CHECK_ERROR(aimet_model_save_onnx(NULL, temp_path(0, "x.onnx")), AIMET_STATUS_NULL_POINTER, "model");
    aimet_model_free(NULL);
    CHECK(1, "aimet_model_free(NULL) is fine");

    m = NULL;
    CHECK_OK(aimet_model_load_onnx(model_path, &m));
    if (!m) return;
    CHECK_ERROR(aimet_model_equalize(m, 1 << 10, NULL, 0, NULL, 0), AIMET_STATUS_INVALID_ARGUMENT, "unknown flag bits");
    const char *starts[1] = {"nowhere"};
    CHECK_ERROR(aimet_model_equalize(m, 0, starts, 1, NULL, 0), AIMET_STATUS_UNKNOWN_NAME, "'nowhere'");
    CHECK_ERROR(aimet_model_equalize(m, 0, NULL, 1, NULL, 0), AIMET_STATUS_NULL_POINTER, "start_names");
    CHECK_ERROR(aimet_model_equalize(m, 0, starts, -1, NULL, 0), AIMET_STATUS_INVALID_ARGUMENT, "negative");
    CHECK_ERROR(aimet_model_save_onnx(m, NULL), AIMET_STATUS_NULL_POINTER, "path");

    /* Saving into a missing folder: IO, and no file anywhere. */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/out.onnx", tmpdir);
    int entries = folder_entries(tmpdir);
    CHECK_ERROR(aimet_model_save_onnx(m, missing), AIMET_STATUS_IO, "cannot write");
    CHECK(!file_exists(missing) && folder_entries(tmpdir) == entries, "no file created");

    /* Saving over a folder: IO, the folder stays and no temporary file is left. */
    const char *folder = temp_path(1, "a-folder.onnx");
    CHECK(mkdir(folder, 0755) == 0, "mkdir");
    entries = folder_entries(tmpdir);
    CHECK_ERROR(aimet_model_save_onnx(m, folder), AIMET_STATUS_IO, "a-folder.onnx");
    struct stat st;
    CHECK(stat(folder, &st) == 0 && S_ISDIR(st.st_mode) && folder_entries(folder) == 0, "the folder is intact");
    CHECK(folder_entries(tmpdir) == entries, "no temporary file left beside it");
    rmdir(folder);
    aimet_model_free(m);

    /* A save that fails (an invalid graph) leaves an existing file intact. */
    const char *existing = temp_path(1, "existing.onnx");
    const char old[] = "old contents";
    CHECK(write_file(existing, old, sizeof old - 1), "wrote existing");
    CHECK_OK(aimet_model_create(&m));
    CHECK_OK(aimet_model_add_output(m, "nothing-makes-this"));
    CHECK_ERROR(aimet_model_save_onnx(m, existing), AIMET_STATUS_INVALID_ARGUMENT, "nothing-makes-this");
    size_t got = 0;
    char *contents = read_file(existing, &got);
    CHECK(contents && got == sizeof old - 1 && memcmp(contents, old, got) == 0, "the old file is intact");
    free(contents);
    unlink(existing);
    aimet_model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s path/to/digits_mbv2.onnx\n", argv[0]);
        return 2;
    }
    model_path = argv[1];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aimetcle-test-model-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_load_and_describe();
    test_equalize_digits();
    test_atomicity();
    test_built_model();
    test_replace_relu6();
    test_errors();
    rmdir(tmpdir);
    return report_results();
}
