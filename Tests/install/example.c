/* A C program against an installed libaimetcle (make install PREFIX=...):
 *
 *     cc example.c $(pkg-config --cflags --libs aimetcle) -o example
 *     ./example model.onnx out.onnx
 *
 * Loads an ONNX model, runs AIMET's equalize_model on it, reports what it did
 * and saves the result. */
#include <aimetcle.h>

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s model.onnx out.onnx\n", argv[0]);
        return 2;
    }
    if (aimet_abi_version() != AIMET_ABI_VERSION) {
        fprintf(stderr, "libaimetcle ABI %u, header %u\n", aimet_abi_version(), AIMET_ABI_VERSION);
        return 1;
    }
    aimet_model_t *model = NULL;
    int32_t folded = 0, relu6 = 0, sets = 0, biases = 0;
    if (aimet_model_load_onnx(argv[1], &model) != AIMET_STATUS_OK ||
        aimet_model_equalize(model, AIMET_EQUALIZE_DEFAULT, NULL, 0, NULL, 0) != AIMET_STATUS_OK ||
        aimet_model_report_counts(model, &folded, &relu6, &sets, &biases) != AIMET_STATUS_OK ||
        aimet_model_save_onnx(model, argv[2]) != AIMET_STATUS_OK) {
        fprintf(stderr, "error: %s\n", aimet_last_error());
        aimet_model_free(model);
        return 1;
    }
    printf("folded %d BatchNorms, replaced %d ReLU6, scaled %d CLS sets, folded %d high biases -> %s\n", folded,
           relu6, sets, biases, argv[2]);
    aimet_model_free(model);
    return 0;
}
