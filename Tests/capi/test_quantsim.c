/* C tests of running models and of the quantization simulation
 * (aimet_model_run, aimet_results_*, aimet_quantsim_*).
 * Build and run: make test-c (runs `test_quantsim data/digits_mbv2.onnx`). */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <stdlib.h>
#include <unistd.h>

enum { BATCH = 4, PIXELS = 16 * 16 };

static float images[BATCH * PIXELS];
static const int64_t image_shape[4] = {BATCH, 1, 16, 16};

static aimet_tensor_t input_tensor(void) {
    aimet_tensor_t t = {"input", images, image_shape, 4, AIMET_DTYPE_FLOAT32};
    return t;
}

/* Runs and copies the first result (BATCH x 10 logits) into `out`. */
static aimet_status_t logits(run_fn run, void *target, float *out) {
    aimet_tensor_t in = input_tensor();
    aimet_results_t *results = NULL;
    aimet_status_t s = run(target, &in, 1, NULL, 0, &results);
    if (s != AIMET_STATUS_OK) return s;
    const float *data = NULL;
    const int64_t *shape = NULL;
    int32_t ndim = 0;
    s = aimet_results_get(results, 0, NULL, &data, &shape, &ndim);
    if (s == AIMET_STATUS_OK) memcpy(out, data, sizeof(float) * BATCH * 10);
    aimet_results_free(results);
    return s;
}

static void test_run(aimet_model_t *model) {
    float first[BATCH * 10], second[BATCH * 10];
    CHECK_OK(logits(run_model, model, first));
    CHECK_OK(logits(run_model, model, second));
    CHECK(memcmp(first, second, sizeof first) == 0, "deterministic");

    aimet_tensor_t in = input_tensor();
    const char *capture[1] = {"/features/features.0/features.0.0/Conv_output_0"};
    aimet_results_t *results = NULL;
    CHECK_OK(aimet_model_run(model, &in, 1, capture, 1, &results));
    int32_t count = 0, ndim = 0;
    const char *name = NULL;
    const int64_t *shape = NULL;
    CHECK_OK(aimet_results_count(results, &count));
    CHECK(count == 2, "output + captured, got %d", count);
    CHECK_OK(aimet_results_get(results, 0, &name, NULL, &shape, &ndim));
    CHECK(strcmp(name, "logits") == 0 && ndim == 2 && shape[0] == BATCH && shape[1] == 10, "logits %s", name);
    CHECK_OK(aimet_results_get(results, 1, &name, NULL, &shape, &ndim));
    CHECK(ndim == 4 && shape[1] == 16 && shape[2] == 16, "captured conv output [N,16,16,16]");
    CHECK_ERROR(aimet_results_get(results, 2, &name, NULL, NULL, NULL), AIMET_STATUS_INVALID_ARGUMENT, "out of range");
    aimet_results_free(results);
    aimet_results_free(NULL);

    const char *unknown[1] = {"nope"};
    CHECK_ERROR(aimet_model_run(model, &in, 1, unknown, 1, &results), AIMET_STATUS_UNKNOWN_NAME, "nope");
    aimet_tensor_t wrong = in;
    wrong.name = "image";
    CHECK_ERROR(aimet_model_run(model, &wrong, 1, NULL, 0, &results), AIMET_STATUS_UNKNOWN_NAME, "no input named 'image'");
    int64_t bad_shape[4] = {BATCH, 3, 16, 16};
    wrong = in;
    wrong.shape = bad_shape;
    float big[BATCH * 3 * PIXELS] = {0};
    wrong.data = big;
    aimet_status_t s = aimet_model_run(model, &wrong, 1, NULL, 0, &results);
    CHECK(s == AIMET_STATUS_SHAPE_MISMATCH || s == AIMET_STATUS_INVALID_ARGUMENT, "3 channels refused: %s",
          aimet_last_error());
    CHECK_ERROR(aimet_model_run(model, &in, 1, NULL, 0, NULL), AIMET_STATUS_NULL_POINTER, "out");
    float kept = images[5];
    images[5] = NAN;  /* a NaN input runs (as in onnxruntime); a quantization simulation refuses it (below) */
    CHECK_OK(aimet_model_run(model, &in, 1, NULL, 0, &results));
    aimet_results_free(results);
    images[5] = kept;
    CHECK_OK(logits(run_model, model, second));
    CHECK(memcmp(first, second, sizeof first) == 0, "usable after errors");
}

static void test_quantsim(aimet_model_t *model) {
    float fp32[BATCH * 10], q8[BATCH * 10], again[BATCH * 10];
    CHECK_OK(logits(run_model, model, fp32));
    aimet_quantsim_options_t options = {AIMET_QUANT_SCHEME_TF_ENHANCED, 8, 8, -1, NULL};
    aimet_quantsim_t *sim = NULL;
    CHECK_OK(aimet_quantsim_create(model, &options, &sim));
    CHECK_ERROR(logits(run_sim, sim, q8), AIMET_STATUS_INVALID_ARGUMENT, "compute_encodings");
    CHECK_OK(aimet_quantsim_begin_calibration(sim));
    CHECK_OK(logits(run_sim, sim, q8));
    CHECK_OK(aimet_quantsim_end_calibration(sim));
    CHECK_OK(logits(run_sim, sim, q8));
    float worst = 0, scale = 0;
    for (int i = 0; i < BATCH * 10; i++) {
        worst = fmaxf(worst, fabsf(q8[i] - fp32[i]));
        scale = fmaxf(scale, fabsf(fp32[i]));
    }
    CHECK(worst > 0 && worst < 0.2f * scale, "W8A8 close to FP32 but not equal: %g of %g", worst, scale);
    float kept = images[5];
    images[5] = NAN;
    CHECK_ERROR(logits(run_sim, sim, q8), AIMET_STATUS_NUMERIC, "needs finite inputs");
    images[5] = kept;

    int64_t length = 0;
    CHECK_OK(aimet_quantsim_encodings_json(sim, NULL, 0, &length));
    char *json = malloc((size_t)length);
    CHECK_OK(aimet_quantsim_encodings_json(sim, json, length, &length));
    CHECK(strstr(json, "\"param_encodings\"") && strstr(json, "\"activation_encodings\"") &&
              strstr(json, "\"version\": \"0.6.1\""),
          "encodings json");
    free(json);

    char path[64];
    snprintf(path, sizeof path, "/tmp/aimetcle-test-%d.encodings", (int)getpid());
    CHECK_OK(aimet_quantsim_save_encodings(sim, path));
    aimet_quantsim_t *frozen = NULL;
    CHECK_OK(aimet_quantsim_create(model, &options, &frozen));
    CHECK_OK(aimet_quantsim_load_param_encodings(frozen, path, 1));
    CHECK_OK(aimet_quantsim_begin_calibration(frozen));
    CHECK_OK(logits(run_sim, frozen, again));
    CHECK_OK(aimet_quantsim_end_calibration(frozen));
    CHECK_OK(logits(run_sim, frozen, again));
    CHECK(memcmp(q8, again, sizeof q8) == 0, "reloaded encodings reproduce the simulation bit for bit");
    unlink(path);
    CHECK_ERROR(aimet_quantsim_load_param_encodings(frozen, path, 1), AIMET_STATUS_FILE_NOT_FOUND, "no such file");
    aimet_quantsim_free(frozen);
    aimet_quantsim_free(sim);
    aimet_quantsim_free(NULL);

    aimet_quantsim_options_t bad = options;
    bad.quant_scheme = 7;
    CHECK_ERROR(aimet_quantsim_create(model, &bad, &sim), AIMET_STATUS_INVALID_ARGUMENT, "quant_scheme");
    bad = options;
    bad.param_bitwidth = 1;
    CHECK_ERROR(aimet_quantsim_create(model, &bad, &sim), AIMET_STATUS_INVALID_ARGUMENT, "bitwidth 1");
    bad = options;
    bad.activation_bitwidth = 3;
    CHECK_ERROR(aimet_quantsim_create(model, &bad, &sim), AIMET_STATUS_INVALID_ARGUMENT, "bitwidth 3");
    bad = options;
    bad.config_json = "{\"defaults\": [1, 2]}";
    CHECK_ERROR(aimet_quantsim_create(model, &bad, &sim), AIMET_STATUS_FORMAT, "quantsim config");
    CHECK_ERROR(aimet_quantsim_create(model, NULL, &sim), AIMET_STATUS_NULL_POINTER, "options");
    CHECK_ERROR(aimet_quantsim_end_calibration(NULL), AIMET_STATUS_NULL_POINTER, "quantsim");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s digits_mbv2.onnx\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < BATCH * PIXELS; i++) images[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
    aimet_model_t *model = NULL;
    if (aimet_model_load_onnx(argv[1], &model) != AIMET_STATUS_OK) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], aimet_last_error());
        return 2;
    }
    test_run(model);
    test_quantsim(model);
    aimet_model_free(model);
    return report_results();
}
