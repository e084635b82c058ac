/* Typed tensors through the C ABI: an int64 input read as data (Reshape's
 * target shape given at run time) and an int64 output, next to float32 ones.
 * Fixture: Tests/capi/fixtures/typed_io.onnx — y = Reshape(x, s), t = Identity(s),
 * x float32 [N, 6], s int64 [2]. */
#include <string.h>

#include "check.h"

static void test_int64_input_and_output(const char *path) {
    aimet_model_t *m = NULL;
    CHECK_OK(aimet_model_load_onnx(path, &m));
    if (!m) return;
    float x[12];
    for (int i = 0; i < 12; i++) x[i] = (float)i;
    int64_t x_shape[2] = {2, 6}, s_shape[1] = {2}, s[2] = {3, 4};
    aimet_tensor_t inputs[2] = {{"x", x, x_shape, 2, AIMET_DTYPE_FLOAT32}, {"s", s, s_shape, 1, AIMET_DTYPE_INT64}};
    aimet_results_t *r = NULL;
    CHECK_OK(aimet_model_run(m, inputs, 2, NULL, 0, &r));
    if (r) {
        const char *name = NULL;
        const float *fdata = NULL;
        const int64_t *shape = NULL;
        int32_t ndim = 0, dtype = -1;
        const void *data = NULL;
        CHECK_OK(aimet_results_get(r, 0, &name, &fdata, &shape, &ndim));
        CHECK(strcmp(name, "y") == 0 && ndim == 2 && shape[0] == 3 && shape[1] == 4, "y is [3, 4]");
        CHECK(fdata && fdata[0] == 0 && fdata[11] == 11, "y keeps x's values");
        CHECK_OK(aimet_results_get_data(r, 0, &dtype, &data));
        CHECK(dtype == AIMET_DTYPE_FLOAT32 && data == (const void *)fdata, "y: float32, the same data");
        CHECK_OK(aimet_results_get(r, 1, &name, &fdata, &shape, &ndim));
        CHECK(strcmp(name, "t") == 0 && ndim == 1 && shape[0] == 2 && fdata == NULL, "t: int64 [2], no float data");
        CHECK_OK(aimet_results_get_data(r, 1, &dtype, &data));
        CHECK(dtype == AIMET_DTYPE_INT64 && data && ((const int64_t *)data)[0] == 3 && ((const int64_t *)data)[1] == 4,
              "t: int64 [3, 4]");
        CHECK_ERROR(aimet_results_get_data(r, 2, &dtype, &data), AIMET_STATUS_INVALID_ARGUMENT, "out of range");
        aimet_results_free(r);
    }
    /* A float where the graph declares int64, and an unknown dtype: errors that say so. */
    aimet_tensor_t wrong[2] = {{"x", x, x_shape, 2, AIMET_DTYPE_FLOAT32}, {"s", x, s_shape, 1, AIMET_DTYPE_FLOAT32}};
    CHECK_ERROR(aimet_model_run(m, wrong, 2, NULL, 0, &r), AIMET_STATUS_INVALID_ARGUMENT, "the graph declares it int64");
    wrong[1].dtype = 7;
    CHECK_ERROR(aimet_model_run(m, wrong, 2, NULL, 0, &r), AIMET_STATUS_INVALID_ARGUMENT, "unknown dtype 7");
    /* A shape that does not fit: the node is named. */
    int64_t bad[2] = {5, 5};
    inputs[1].data = bad;
    CHECK_ERROR(aimet_model_run(m, inputs, 2, NULL, 0, &r), AIMET_STATUS_SHAPE_MISMATCH, "node 'reshape' (Reshape)");
    aimet_model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s path/to/typed_io.onnx\n", argv[0]);
        return 2;
    }
    test_int64_input_and_output(argv[1]);
    return report_results();
}
