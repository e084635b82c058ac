/* C tests of AdaRound (aimet_adaround_options_default, aimet_model_adaround,
 * aimet_model_adaround_report_json, aimet_model_clone): AIMET's documented
 * flow on the bundled digits model — AdaRound at 4 bits, a W4A8 quantsim that
 * loads and freezes the encodings, calibration, evaluation — and bad input.
 * Build and run: make test-c (runs `test_adaround data/digits_mbv2.onnx data/digits.npz`). */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <stdlib.h>
#include <unistd.h>

enum { SAMPLES = 300, PIXELS = 16 * 16, CLASSES = 10, BATCH = 32 };

static float calib[SAMPLES * PIXELS], test_x[SAMPLES * PIXELS];
static int64_t test_y[SAMPLES];

/* Copies member `name` (a .npy of `bytes` data bytes) out of an uncompressed
 * .npz (np.savez): finds the member's name, then the .npy header after it. */
static int npz_member(const unsigned char *zip, size_t size, const char *name, void *out, size_t bytes) {
    size_t n = strlen(name);
    for (size_t i = 0; i + n + 10 < size; i++) {
        if (memcmp(zip + i, name, n) != 0) continue;
        for (size_t j = i + n; j + 10 < size && j < i + n + 256; j++) {
            if (memcmp(zip + j, "\x93NUMPY", 6) != 0 || zip[j + 6] != 1) continue;
            size_t header = (size_t)zip[j + 8] | (size_t)zip[j + 9] << 8;
            size_t start = j + 10 + header;
            if (start + bytes > size) return 0;
            memcpy(out, zip + start, bytes);
            return 1;
        }
    }
    return 0;
}

static int load_digits(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *zip = malloc((size_t)size);
    int ok = zip && fread(zip, 1, (size_t)size, f) == (size_t)size &&
             npz_member(zip, (size_t)size, "x_calib.npy", calib, sizeof calib) &&
             npz_member(zip, (size_t)size, "x_test.npy", test_x, sizeof test_x) &&
             npz_member(zip, (size_t)size, "y_test.npy", test_y, sizeof test_y);
    free(zip);
    fclose(f);
    return ok;
}

/* The calibration set as 10 batches of (up to) 32 images. */
enum { NUM_BATCHES = (SAMPLES + BATCH - 1) / BATCH };
static int64_t batch_shapes[NUM_BATCHES][4];
static aimet_tensor_t batches[NUM_BATCHES];

static void make_batches(void) {
    for (int b = 0; b < NUM_BATCHES; b++) {
        int n = SAMPLES - b * BATCH < BATCH ? SAMPLES - b * BATCH : BATCH;
        batch_shapes[b][0] = n;
        batch_shapes[b][1] = 1;
        batch_shapes[b][2] = 16;
        batch_shapes[b][3] = 16;
        aimet_tensor_t t = {"input", calib + (size_t)b * BATCH * PIXELS, batch_shapes[b], 4, AIMET_DTYPE_FLOAT32};
        batches[b] = t;
    }
}

/* Logits of the 300 test images through a model or a simulation. */
static aimet_status_t test_logits(run_fn run, void *target, float *out) {
    static const int64_t shape[4] = {SAMPLES, 1, 16, 16};
    aimet_tensor_t in = {"input", test_x, shape, 4, AIMET_DTYPE_FLOAT32};
    aimet_results_t *results = NULL;
    aimet_status_t s = run(target, &in, 1, NULL, 0, &results);
    if (s != AIMET_STATUS_OK) return s;
    const float *data = NULL;
    s = aimet_results_get(results, 0, NULL, &data, NULL, NULL);
    if (s == AIMET_STATUS_OK) memcpy(out, data, sizeof(float) * SAMPLES * CLASSES);
    aimet_results_free(results);
    return s;
}

static double accuracy(const float *logits) {
    int right = 0;
    for (int i = 0; i < SAMPLES; i++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            if (logits[i * CLASSES + c] > logits[i * CLASSES + best]) best = c;
        right += best == test_y[i];
    }
    return (double)right / SAMPLES;
}

static double mse(const float *a, const float *b) {
    double sum = 0;
    for (int i = 0; i < SAMPLES * CLASSES; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sum / (SAMPLES * CLASSES);
}

/* A W4A8 simulation of `model`, calibrated on the calibration set; with
 * `encodings` the param encodings are loaded from it and frozen first. */
static aimet_status_t w4a8(aimet_model_t *model, const char *encodings, float *logits) {
    aimet_quantsim_options_t options = {AIMET_QUANT_SCHEME_TF_ENHANCED, 4, 8, -1, NULL};
    aimet_quantsim_t *sim = NULL;
    aimet_status_t s = aimet_quantsim_create(model, &options, &sim);
    if (s == AIMET_STATUS_OK && encodings) s = aimet_quantsim_load_param_encodings(sim, encodings, 1);
    if (s == AIMET_STATUS_OK) s = aimet_quantsim_begin_calibration(sim);
    for (int b = 0; s == AIMET_STATUS_OK && b < NUM_BATCHES; b++) {
        aimet_results_t *r = NULL;
        s = aimet_quantsim_run(sim, &batches[b], 1, NULL, 0, &r);
        aimet_results_free(r);
    }
    if (s == AIMET_STATUS_OK) s = aimet_quantsim_end_calibration(sim);
    if (s == AIMET_STATUS_OK) s = test_logits(run_sim, sim, logits);
    aimet_quantsim_free(sim);
    return s;
}

static int layers_seen;
static int32_t count_layers(void *user, const char *layer, int32_t index, int32_t count, double speed, double before,
                         double after, int32_t kept) {
    (void)layer, (void)speed;
    int *calls = user;
    if (index == *calls && count == 15 && (kept || after < before)) layers_seen++;
    (*calls)++;
    return 0;
}

static int32_t stop_after_two(void *user, const char *layer, int32_t index, int32_t count, double speed,
                              double before, double after, int32_t kept) {
    (void)user, (void)layer, (void)count, (void)speed, (void)before, (void)after, (void)kept;
    return index == 1;
}

static size_t file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return (size_t)n;
}

static void test_documented_flow(aimet_model_t *original, const char *dir) {
    float fp32[SAMPLES * CLASSES], nearest[SAMPLES * CLASSES], ada[SAMPLES * CLASSES];
    CHECK_OK(test_logits(run_model, original, fp32));
    CHECK_OK(w4a8(original, NULL, nearest));

    aimet_model_t *model = NULL;
    CHECK_OK(aimet_model_clone(original, &model));
    aimet_adaround_options_t options;
    CHECK_OK(aimet_adaround_options_default(&options));
    CHECK(options.param_bitwidth == 4 && options.quant_scheme == AIMET_QUANT_SCHEME_TF_ENHANCED &&
              options.batch_size == 32 && close_to(options.reg_param, 0.01f) && close_to(options.beta_start, 20) &&
              close_to(options.beta_end, 2) && close_to(options.warm_start, 0.2f) && options.iterations == 0,
          "AIMET's defaults");
    options.iterations = 500;
    int calls = 0;
    options.progress = count_layers;
    options.progress_user = &calls;
    char path[512];
    snprintf(path, sizeof path, "%s/digits.encodings", dir);
    CHECK_OK(aimet_model_adaround(model, batches, NUM_BATCHES, 1, &options, path));
    CHECK(calls == 15 && layers_seen == 15, "one progress call per layer, in order (%d calls, %d good)", calls,
          layers_seen);
    CHECK(file_size(path) > 1000, "encodings written");

    int64_t length = 0;
    CHECK_OK(aimet_model_adaround_report_json(model, NULL, 0, &length));
    char *report = malloc((size_t)length);
    CHECK_OK(aimet_model_adaround_report_json(model, report, length, &length));
    CHECK(strstr(report, "\"mse_nearest\"") && strstr(report, "\"param_encodings\"") &&
              strstr(report, "\"features.0.0.weight\""),
          "report: %.200s", report);
    free(report);

    CHECK_OK(w4a8(model, path, ada));
    double acc = accuracy(ada), err = mse(ada, fp32), err_nearest = mse(nearest, fp32);
    printf("digits W4A8: FP32 %.2f%%, nearest %.2f%% (logit MSE %.3f), AdaRound 500 it %.2f%% (MSE %.3f)\n",
           100 * accuracy(fp32), 100 * accuracy(nearest), err_nearest, 100 * acc, err);
    CHECK(acc >= 0.98, "AdaRound W4A8 accuracy %.4f", acc);
    CHECK(err < 0.5 * err_nearest, "AdaRound logit MSE %.4f vs nearest %.4f", err, err_nearest);

    /* The original is a separate model: unchanged. */
    float again[SAMPLES * CLASSES];
    CHECK_OK(test_logits(run_model, original, again));
    CHECK(memcmp(again, fp32, sizeof again) == 0, "the clone's AdaRound left the original alone");
    aimet_model_free(model);
}

/* Weights of `model` (one small parameter) for comparing before/after. */
static void first_weight(aimet_model_t *model, float *out, int64_t count) {
    CHECK_OK(aimet_model_get_param(model, "features.0.0.weight", out, count));
}

static void test_bad_input(aimet_model_t *model, const char *dir) {
    enum { W = 16 * 1 * 3 * 3 };
    float before[W], after[W];
    first_weight(model, before, W);
    char path[512];
    snprintf(path, sizeof path, "%s/never.encodings", dir);
    aimet_adaround_options_t o;
    CHECK_OK(aimet_adaround_options_default(&o));
    o.iterations = 5;

    CHECK_ERROR(aimet_adaround_options_default(NULL), AIMET_STATUS_NULL_POINTER, "options");
    CHECK_ERROR(aimet_model_adaround(model, batches, NUM_BATCHES, 1, NULL, path), AIMET_STATUS_NULL_POINTER, "options");
    CHECK_ERROR(aimet_model_adaround(NULL, batches, NUM_BATCHES, 1, &o, path), AIMET_STATUS_NULL_POINTER, "model");
    CHECK_ERROR(aimet_model_adaround(model, batches, 0, 1, &o, path), AIMET_STATUS_INVALID_ARGUMENT, "data loader is empty");
    o.num_batches = 4;
    CHECK_ERROR(aimet_model_adaround(model, batches, 3, 1, &o, path), AIMET_STATUS_INVALID_ARGUMENT, "has only 3");
    o.num_batches = 0;
    o.param_bitwidth = 1;
    CHECK_ERROR(aimet_model_adaround(model, batches, 2, 1, &o, path), AIMET_STATUS_INVALID_ARGUMENT, "2...16");
    o.param_bitwidth = 17;
    CHECK_ERROR(aimet_model_adaround(model, batches, 2, 1, &o, path), AIMET_STATUS_INVALID_ARGUMENT, "2...16");
    o.param_bitwidth = 4;
    o.quant_scheme = 7;
    CHECK_ERROR(aimet_model_adaround(model, batches, 2, 1, &o, path), AIMET_STATUS_INVALID_ARGUMENT, "quant_scheme");
    o.quant_scheme = AIMET_QUANT_SCHEME_TF;
    const char *unknown[1] = {"no_such_layer"};
    o.ignore = unknown;
    o.num_ignore = 1;
    CHECK_ERROR(aimet_model_adaround(model, batches, 2, 1, &o, path), AIMET_STATUS_UNKNOWN_NAME, "no_such_layer");
    o.ignore = NULL;
    o.num_ignore = 0;
    const int32_t bits[1] = {3};
    o.override_names = unknown;
    o.override_bitwidths = bits;
    o.num_overrides = 1;
    CHECK_ERROR(aimet_model_adaround(model, batches, 2, 1, &o, path), AIMET_STATUS_UNKNOWN_NAME, "no_such_layer");
    o.num_overrides = 0;
    o.per_channel = 3;
    CHECK_ERROR(aimet_model_adaround(model, batches, 2, 1, &o, path), AIMET_STATUS_INVALID_ARGUMENT, "per_channel");
    o.per_channel = -1;

    /* Wrong input name, wrong shape, NaN in the data. */
    static const int64_t wrong_shape[4] = {2, 3, 16, 16};
    aimet_tensor_t wrong_name = {"image", calib, batch_shapes[0], 4, AIMET_DTYPE_FLOAT32};
    CHECK_ERROR(aimet_model_adaround(model, &wrong_name, 1, 1, &o, path), AIMET_STATUS_UNKNOWN_NAME, "image");
    aimet_tensor_t wrong = {"input", calib, wrong_shape, 4, AIMET_DTYPE_FLOAT32};
    aimet_status_t s = aimet_model_adaround(model, &wrong, 1, 1, &o, path);
    CHECK(s == AIMET_STATUS_SHAPE_MISMATCH || s == AIMET_STATUS_INVALID_ARGUMENT, "wrong shape: %d %s", s,
          aimet_last_error());
    float kept = calib[7];
    calib[7] = NAN;
    CHECK_ERROR(aimet_model_adaround(model, batches, 1, 1, &o, path), AIMET_STATUS_NUMERIC, "must be finite");
    calib[7] = kept;

    /* An encodings path that cannot be written: the model is not changed. */
    CHECK_ERROR(aimet_model_adaround(model, batches, 1, 1, &o, "/no/such/folder/x.encodings"), AIMET_STATUS_IO,
                "x.encodings");

    /* A progress callback that stops after the second layer. */
    o.progress = stop_after_two;
    CHECK_ERROR(aimet_model_adaround(model, batches, 1, 1, &o, path), AIMET_STATUS_CANCELLED, "after layer 2 of 15");
    o.progress = NULL;

    first_weight(model, after, W);
    CHECK(memcmp(before, after, sizeof before) == 0, "failed calls left the weights alone");
    CHECK(access(path, F_OK) != 0, "failed calls wrote no encodings file");
    CHECK_ERROR(aimet_model_clone(model, NULL), AIMET_STATUS_NULL_POINTER, "out");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s digits_mbv2.onnx digits.npz\n", argv[0]);
        return 2;
    }
    if (!load_digits(argv[2])) {
        fprintf(stderr, "cannot read x_calib/x_test/y_test from %s\n", argv[2]);
        return 2;
    }
    make_batches();
    aimet_model_t *model = NULL;
    if (aimet_model_load_onnx(argv[1], &model) != AIMET_STATUS_OK) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], aimet_last_error());
        return 2;
    }
    char dir[] = "/tmp/aimetcle-adaround-XXXXXX";
    if (!mkdtemp(dir)) return 2;
    test_bad_input(model, dir);
    test_documented_flow(model, dir);
    char cleanup[600];
    snprintf(cleanup, sizeof cleanup, "rm -rf '%s'", dir);
    if (system(cleanup) != 0) fprintf(stderr, "could not remove %s\n", dir);
    aimet_model_free(model);
    return report_results();
}
