/* C tests of libaimetcle.so against Include/aimetcle.h.
 * Build and run: make test-c (prints "N passed, N failed"). */
#include "aimetcle.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static float rand_float(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static aimet_layer_t conv2d(const char *name, float *w, const int64_t *shape, float *b, int64_t blen, int groups) {
    aimet_layer_t l;
    memset(&l, 0, sizeof l);
    l.kind = AIMET_LAYER_CONV2D;
    l.groups = groups;
    l.weight_ndim = 4;
    l.weight = w;
    l.weight_shape = shape;
    l.bias = b;
    l.bias_len = blen;
    l.name = name;
    return l;
}

static void test_library(void) {
    CHECK(aimet_abi_version() == AIMET_ABI_VERSION, "abi %u", aimet_abi_version());
    CHECK(strcmp(aimet_status_string(AIMET_STATUS_OK), "ok") == 0, "%s", aimet_status_string(AIMET_STATUS_OK));
    CHECK(strstr(aimet_status_string(AIMET_STATUS_SHAPE_MISMATCH), "shape") != NULL, "text");
    CHECK(strcmp(aimet_status_string((aimet_status_t)12345), "unknown status") == 0, "unknown");
}

static void test_bn_fold(void) {
    /* Linear 2->2, W = [[1,2],[3,4]], b = [1,-1]; BN gamma [2,1] beta [.5,0] mean [1,2]
     * var [3,0] eps 1 → s = [1,1], b' = [0.5, -3]. */
    float w[4] = {1, 2, 3, 4}, b[2] = {1, -1};
    int64_t shape[2] = {2, 2};
    float gamma[2] = {2, 1}, beta[2] = {0.5f, 0}, mean[2] = {1, 2}, var[2] = {3, 0};
    aimet_layer_t fc = {AIMET_LAYER_LINEAR, 1, 0, 2, w, shape, b, 2, "fc"};
    aimet_batchnorm_t bn = {gamma, beta, mean, var, 2, 1.0f, "bn"};
    int32_t foldable = -1;
    CHECK(aimet_bn_fold_check(&fc, &bn, AIMET_BN_AFTER_LAYER, &foldable) == AIMET_STATUS_OK && foldable == 1, "check");
    CHECK(aimet_bn_fold(&fc, &bn, AIMET_BN_AFTER_LAYER) == AIMET_STATUS_OK, "%s", aimet_last_error());
    float expect_b[2] = {0.5f, -3};
    CHECK(all_close(b, expect_b, 2) && all_close(w, (float[]){1, 2, 3, 4}, 4), "b = %g %g", b[0], b[1]);

    /* BN before a conv with a scale: gamma 2, var 1-eps → s = 2 everywhere. */
    float cw[8] = {1, 2, 3, 4, 5, 6, 7, 8}, cb[2] = {0, 0};
    int64_t cshape[4] = {2, 1, 2, 2};
    float g1[1] = {2}, b1[1] = {1}, m1[1] = {0.5f}, v1[1] = {1};
    aimet_layer_t conv = conv2d("conv", cw, cshape, cb, 2, 1);
    aimet_batchnorm_t bn1 = {g1, b1, m1, v1, 1, 0.0f, "bn1"};
    CHECK(aimet_bn_fold(&conv, &bn1, AIMET_BN_BEFORE_LAYER) == AIMET_STATUS_OK, "%s", aimet_last_error());
    /* shift = beta - mu*s = 1 - 1 = 0 → bias unchanged; W doubled. */
    CHECK(all_close(cw, (float[]){2, 4, 6, 8, 10, 12, 14, 16}, 8) && cb[0] == 0 && cb[1] == 0, "forward fold");
}

static void test_bn_fold_errors(void) {
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[2] = {1, 2}, saved_w[8], saved_b[2];
    memcpy(saved_w, w, sizeof w);
    memcpy(saved_b, b, sizeof b);
    int64_t shape[4] = {2, 1, 2, 2};
    float gamma[2] = {1, 1}, beta[2] = {0, 0}, mean[2] = {0, 0}, var[2] = {1, 0};
    aimet_batchnorm_t bn = {gamma, beta, mean, var, 2, 0.0f, "bn"};
    aimet_layer_t conv = conv2d("conv", w, shape, b, 2, 1);

    CHECK_ERROR(aimet_bn_fold(&conv, &bn, AIMET_BN_AFTER_LAYER), AIMET_STATUS_NUMERIC, "sigma");
    var[1] = 1;
    CHECK_ERROR(aimet_bn_fold(NULL, &bn, 0), AIMET_STATUS_NULL_POINTER, "layer is NULL");
    CHECK_ERROR(aimet_bn_fold(&conv, NULL, 0), AIMET_STATUS_NULL_POINTER, "bn is NULL");
    CHECK_ERROR(aimet_bn_fold(&conv, &bn, 7), AIMET_STATUS_INVALID_ARGUMENT, "position");
    int32_t foldable;
    CHECK_ERROR(aimet_bn_fold_check(&conv, &bn, 0, NULL), AIMET_STATUS_NULL_POINTER, "foldable");
    (void)foldable;

    conv.bias = NULL;
    CHECK_ERROR(aimet_bn_fold(&conv, &bn, 0), AIMET_STATUS_NULL_POINTER, "bias is NULL");
    conv.bias = b;

    conv.padded = 1; /* BN before a padded conv cannot fold */
    bn.num_features = 1;
    CHECK(aimet_bn_fold_check(&conv, &bn, AIMET_BN_BEFORE_LAYER, &foldable) == AIMET_STATUS_OK && foldable == 0,
          "padded check");
    CHECK_ERROR(aimet_bn_fold(&conv, &bn, AIMET_BN_BEFORE_LAYER), AIMET_STATUS_UNSUPPORTED, "pads its input");
    conv.padded = 0;

    /* channel mismatch: a 3-feature BN after a 2-channel conv */
    float g3[3] = {1, 1, 1}, z3[3] = {0, 0, 0}, v3[3] = {1, 1, 1};
    aimet_batchnorm_t bn3 = {g3, z3, z3, v3, 3, 1e-5f, "bn3"};
    CHECK_ERROR(aimet_bn_fold(&conv, &bn3, AIMET_BN_AFTER_LAYER), AIMET_STATUS_SHAPE_MISMATCH, "3 features");

    conv.weight_ndim = 3;
    CHECK_ERROR(aimet_bn_fold(&conv, &bn, 0), AIMET_STATUS_SHAPE_MISMATCH, "weight_ndim");
    conv.weight_ndim = 4;
    conv.kind = 42;
    CHECK_ERROR(aimet_bn_fold(&conv, &bn, 0), AIMET_STATUS_INVALID_ARGUMENT, "unknown layer kind 42");
    conv.kind = AIMET_LAYER_CONV2D;
    float b5[5] = {1, 2, 0, 0, 0}; /* bias_len must describe a real buffer (ASan caught a 2-float one) */
    conv.bias = b5;
    conv.bias_len = 5;
    bn.num_features = 2;
    CHECK_ERROR(aimet_bn_fold(&conv, &bn, 0), AIMET_STATUS_SHAPE_MISMATCH, "bias has 5 entries");
    conv.bias = b;
    conv.bias_len = 2;

    w[3] = NAN;
    saved_w[3] = NAN;
    CHECK_ERROR(aimet_bn_fold(&conv, &bn, 0), AIMET_STATUS_NUMERIC, "not finite at flat index 3");
    w[3] = 4;
    saved_w[3] = 4;
    mean[0] = INFINITY;
    CHECK_ERROR(aimet_bn_fold(&conv, &bn, 0), AIMET_STATUS_NUMERIC, "running_mean is not finite");
    CHECK(memcmp(w, saved_w, sizeof w) == 0 && memcmp(b, saved_b, sizeof b) == 0, "buffers untouched by errors");
}

static void test_cls(void) {
    /* r1 = [4, 1], c2 = [1, 4] → S = [2, 0.5] */
    float w1[2] = {-4, 1}, b1[2] = {2, 3}, w2[2] = {1, -4};
    int64_t s1[4] = {2, 1, 1, 1}, s2[4] = {1, 2, 1, 1};
    aimet_layer_t l1 = conv2d("a", w1, s1, b1, 2, 1), l2 = conv2d("b", w2, s2, NULL, 0, 1);
    aimet_layer_t *pair[2] = {&l1, &l2};
    float scales[2];
    CHECK(aimet_cls_scale_set(pair, 2, scales, 2) == AIMET_STATUS_OK, "%s", aimet_last_error());
    CHECK(scales[0] == 2 && scales[1] == 0.5f, "S = %g %g", scales[0], scales[1]);
    CHECK(all_close(w1, (float[]){-2, 2}, 2) && all_close(b1, (float[]){1, 6}, 2) && all_close(w2, (float[]){2, -2}, 2),
          "scaled");

    /* Triplet invariant: all three ranges equal after scaling. */
    unsigned rng = 1;
    float a[6 * 3], dw[6 * 9], c[4 * 6];
    for (int i = 0; i < 18; i++) a[i] = rand_float(&rng) * (float)(1 + i % 5);
    for (int i = 0; i < 54; i++) dw[i] = rand_float(&rng);
    for (int i = 0; i < 24; i++) c[i] = rand_float(&rng);
    int64_t sa[4] = {6, 3, 1, 1}, sdw[4] = {6, 1, 3, 3}, sc[4] = {4, 6, 1, 1};
    aimet_layer_t la = conv2d("a", a, sa, NULL, 0, 1), ldw = conv2d("dw", dw, sdw, NULL, 0, 6),
                  lc = conv2d("c", c, sc, NULL, 0, 1);
    aimet_layer_t *triplet[3] = {&la, &ldw, &lc};
    float s12s23[12];
    CHECK(aimet_cls_scale_set(triplet, 3, s12s23, 12) == AIMET_STATUS_OK, "%s", aimet_last_error());
    for (int ch = 0; ch < 6; ch++) {
        float ra = 0, rdw = 0, cc = 0;
        for (int i = 0; i < 3; i++) ra = fmaxf(ra, fabsf(a[ch * 3 + i]));
        for (int i = 0; i < 9; i++) rdw = fmaxf(rdw, fabsf(dw[ch * 9 + i]));
        for (int o = 0; o < 4; o++) cc = fmaxf(cc, fabsf(c[o * 6 + ch]));
        CHECK(close_to(ra, rdw) && close_to(rdw, cc), "channel %d ranges %g %g %g", ch, ra, rdw, cc);
    }
}

static void test_cls_errors(void) {
    float w1[6] = {1, 2, 3, 4, 5, 6}, w2[6] = {1, 2, 3, 4, 5, 6}, saved[6];
    memcpy(saved, w1, sizeof saved);
    int64_t s1[4] = {3, 2, 1, 1}, s2[4] = {3, 2, 1, 1}; /* 3 out, but layer 2 takes 2 in */
    aimet_layer_t l1 = conv2d("first", w1, s1, NULL, 0, 1), l2 = conv2d("second", w2, s2, NULL, 0, 1);
    aimet_layer_t *pair[2] = {&l1, &l2};
    float scales[6];
    CHECK_ERROR(aimet_cls_scale_set(pair, 2, scales, 3), AIMET_STATUS_SHAPE_MISMATCH, "cannot form a CLS pair");
    CHECK_ERROR(aimet_cls_scale_set(pair, 1, scales, 3), AIMET_STATUS_INVALID_ARGUMENT, "got 1");
    CHECK_ERROR(aimet_cls_scale_set(pair, 2, scales, 2), AIMET_STATUS_SHAPE_MISMATCH, "scales holds 2 floats");
    CHECK_ERROR(aimet_cls_scale_set(NULL, 2, scales, 3), AIMET_STATUS_NULL_POINTER, "layers is NULL");
    CHECK_ERROR(aimet_cls_scale_set(pair, 2, NULL, 3), AIMET_STATUS_NULL_POINTER, "scales is NULL");
    aimet_layer_t *same[2] = {&l1, &l1};
    CHECK_ERROR(aimet_cls_scale_set(same, 2, scales, 3), AIMET_STATUS_INVALID_ARGUMENT, "share one weight buffer");
    l2.kind = AIMET_LAYER_LINEAR;
    l2.weight_ndim = 2;
    int64_t lin[2] = {2, 3};
    l2.weight_shape = lin;
    CHECK_ERROR(aimet_cls_scale_set(pair, 2, scales, 3), AIMET_STATUS_UNSUPPORTED, "cannot be cross-layer scaled");
    /* Triplet whose middle layer is an ordinary conv. */
    float w3[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    int64_t s3[4] = {3, 3, 1, 1}, s4[4] = {1, 3, 1, 1};
    aimet_layer_t mid = conv2d("mid", w3, s3, NULL, 0, 1), last = conv2d("last", w2, s4, NULL, 0, 1);
    aimet_layer_t *triplet[3] = {&l1, &mid, &last};
    l1.weight_shape = (int64_t[]){3, 2, 1, 1};
    CHECK_ERROR(aimet_cls_scale_set(triplet, 3, scales, 6), AIMET_STATUS_UNSUPPORTED, "not depthwise");
    CHECK(memcmp(w1, saved, sizeof saved) == 0, "untouched");
}

static void test_hbf(void) {
    /* beta [10, 1], gamma [1, 1], S [2, 1] → c = [3.5, 0]; b1 -= c; b2 += W2.sum(k) @ c. */
    float w1[2] = {1, 1}, b1[2] = {6, 2}, w2[4] = {1, 2, 3, 4}, b2[1] = {1};
    int64_t s1[4] = {2, 1, 1, 1}, s2[4] = {1, 2, 1, 2};
    aimet_layer_t l1 = conv2d("a", w1, s1, b1, 2, 1), l2 = conv2d("b", w2, s2, b2, 1, 1);
    float gamma[2] = {1, 1}, beta[2] = {10, 1}, scale[2] = {2, 1};
    aimet_batchnorm_t bn = {gamma, beta, NULL, NULL, 2, 1e-5f, "bn"};
    int32_t applied = -1;
    CHECK(aimet_hbf_fold_pair(&l1, &l2, &bn, scale, 2, 1, &applied) == AIMET_STATUS_OK, "%s", aimet_last_error());
    CHECK(applied == 1 && all_close(b1, (float[]){2.5f, 2}, 2) && close_to(b2[0], 11.5f), "b1 %g %g b2 %g", b1[0],
          b1[1], b2[0]);
    l2.bias = NULL;
    CHECK(aimet_hbf_fold_pair(&l1, &l2, &bn, scale, 2, 1, &applied) == AIMET_STATUS_OK && applied == 0, "skip");
    CHECK_ERROR(aimet_hbf_fold_pair(&l1, &l2, &bn, scale, 1, 1, &applied), AIMET_STATUS_SHAPE_MISMATCH,
                "scale factor has 1 entries");
    CHECK_ERROR(aimet_hbf_fold_pair(&l1, &l2, &bn, scale, 2, 1, NULL), AIMET_STATUS_NULL_POINTER, "applied");
}

static void *fail_in_thread(void *arg) {
    (void)arg;
    aimet_bn_fold(NULL, NULL, 0);
    return strstr(aimet_last_error(), "layer is NULL") ? (void *)1 : NULL;
}

static void test_last_error_is_thread_local(void) {
    float w[1] = {1}, b[1] = {0};
    int64_t shape[4] = {1, 1, 1, 1};
    aimet_layer_t l = conv2d("here", w, shape, b, 1, 1);
    aimet_bn_fold(&l, NULL, 0); /* this thread: "bn is NULL" */
    pthread_t t;
    void *ok = NULL;
    pthread_create(&t, NULL, fail_in_thread, NULL);
    pthread_join(t, &ok);
    CHECK(ok != NULL, "other thread saw its own error");
    CHECK(strstr(aimet_last_error(), "bn is NULL") != NULL, "this thread keeps its own: %s", aimet_last_error());
}

int main(void) {
    test_library();
    test_bn_fold();
    test_bn_fold_errors();
    test_cls();
    test_cls_errors();
    test_hbf();
    test_last_error_is_thread_local();
    return report_results();
}
