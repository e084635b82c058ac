/*
 * aimetcle.h — the public C ABI of libaimetcle.so
 *
 * aimetcle implements AIMET's post-training quantization techniques
 * (batch-norm folding, cross-layer scaling, high-bias fold) in Swift and
 * exports them as a flat C API over plain float buffers.
 *
 * Quick tour
 * ----------
 *   1. Describe each layer with an aimet_layer_t: its kind, groups, and
 *      pointers to YOUR weight / bias buffers (torch layouts, float32,
 *      C-contiguous). Describe a BatchNorm with an aimet_batchnorm_t.
 *   2. Call a transform. It works in place on your buffers:
 *
 *        aimet_layer_t conv = {0};
 *        conv.kind = AIMET_LAYER_CONV2D; conv.groups = 1; conv.name = "conv1";
 *        conv.weight = w; conv.weight_shape = wshape; conv.weight_ndim = 4;
 *        conv.bias = b; conv.bias_len = 16;          // zeros if it had none
 *        aimet_batchnorm_t bn = { gamma, beta, mean, var, 16, 1e-5f, "bn1" };
 *        if (aimet_bn_fold(&conv, &bn, AIMET_BN_AFTER_LAYER) != AIMET_STATUS_OK)
 *            fprintf(stderr, "%s\n", aimet_last_error());
 *
 *   3. Every fallible call returns aimet_status_t (0 = OK, negative = error).
 *      On error nothing was written: your buffers are exactly as before, and
 *      aimet_last_error() says what was wrong.
 *
 * Layouts (torch's): conv [Cout, Cin/groups, k...] (1-D: [Cout, Cin/groups, K]),
 * transposed conv [Cin, Cout/groups, k...], linear [out, in].
 *
 * Conventions: symbols aimet_<noun>_<verb>; enum values are explicit and
 * append-only; the library keeps no caller pointer after a call returns;
 * all calls are thread-safe when they do not share buffers.
 *
 * Handles (aimet_model_t, aimet_quantsim_t, aimet_results_t)
 * ----------------------------------------------------------
 * A handle is a number in the library's registry of live handles, not an
 * address, and numbers are never reused. So these misuses are detected and
 * fail with a status and a message in aimet_last_error(), touching nothing:
 *   - use after free, double free, a made-up handle, or a handle of another
 *     kind (a quantsim passed as a model): AIMET_STATUS_INVALID_HANDLE;
 *   - a call on a model or quantsim handle while another thread is inside a
 *     call on the same handle (including a free): AIMET_STATUS_BUSY — the
 *     call is refused, not queued; results handles are read-only and may be
 *     read from several threads at once;
 *   - NULL where a handle is required: AIMET_STATUS_NULL_POINTER (the free
 *     functions accept NULL).
 * What cannot be detected: using pointers the library lent (aimet_results_get
 * data, names and shapes; aimet_last_error text) after they expire; two
 * threads sharing the caller's own buffers; a handle value forged to equal a
 * live handle's number.
 */
#ifndef AIMETCLE_H
#define AIMETCLE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on every incompatible change; bindings refuse a mismatch. */
#define AIMET_ABI_VERSION 2

/* ---------------------------------------------------------------- status */

typedef enum aimet_status {
    AIMET_STATUS_OK = 0,
    AIMET_STATUS_INVALID_ARGUMENT = -1, /* a value that makes no sense (kind, groups, count) */
    AIMET_STATUS_NULL_POINTER = -2,     /* a required pointer was NULL */
    AIMET_STATUS_SHAPE_MISMATCH = -3,   /* shapes / channel counts do not fit together */
    AIMET_STATUS_NUMERIC = -4,          /* NaN / infinity in the input, zero BN sigma */
    AIMET_STATUS_UNSUPPORTED = -5,      /* valid input the operation cannot handle */
    AIMET_STATUS_IO = -6,               /* a file could not be read or written */
    AIMET_STATUS_FORMAT = -7,           /* a malformed or truncated model file */
    AIMET_STATUS_FILE_NOT_FOUND = -8,   /* no file at the given path */
    AIMET_STATUS_UNKNOWN_NAME = -9,     /* no node / parameter of that name */
    AIMET_STATUS_INVALID_HANDLE = -10,  /* a freed handle, or not a handle of that kind */
    AIMET_STATUS_BUSY = -11,            /* the handle is in use by another thread */
    AIMET_STATUS_CANCELLED = -12,       /* a progress callback asked to stop */
    AIMET_STATUS_INTERNAL = -99         /* a bug in aimetcle: please report */
} aimet_status_t;

/* The ABI version the library was built with (== AIMET_ABI_VERSION). */
uint32_t aimet_abi_version(void);

/* Static text for a status ("invalid argument", ...). Borrowed; never free. */
const char *aimet_status_string(aimet_status_t status);

/* The message of the last failed call on THIS thread ("" if none).
 * Borrowed; valid until the next aimetcle call on the same thread. */
const char *aimet_last_error(void);

/* ---------------------------------------------------------------- layers */

typedef enum aimet_layer_kind {
    AIMET_LAYER_CONV1D = 1,
    AIMET_LAYER_CONV2D = 2,
    AIMET_LAYER_CONV_TRANSPOSE1D = 3,
    AIMET_LAYER_CONV_TRANSPOSE2D = 4,
    AIMET_LAYER_LINEAR = 5
} aimet_layer_kind_t;

/* A weight layer over caller-owned buffers (borrowed for the call only). */
typedef struct aimet_layer {
    int32_t kind;                /* aimet_layer_kind_t */
    int32_t groups;              /* >= 1; 1 for linear */
    int32_t padded;              /* nonzero if the layer pads its input (conv) */
    int32_t weight_ndim;         /* 3 for 1-D convs, 4 for 2-D convs, 2 for linear */
    float *weight;               /* weight_shape-sized, C-contiguous float32 */
    const int64_t *weight_shape; /* weight_ndim entries */
    float *bias;                 /* out-channel floats, or NULL when there is no bias */
    int64_t bias_len;            /* entries in bias (ignored when bias is NULL) */
    const char *name;            /* for error messages; may be NULL */
} aimet_layer_t;

/* BatchNorm parameters over caller-owned buffers (read only). */
typedef struct aimet_batchnorm {
    const float *gamma;          /* weight */
    const float *beta;           /* bias */
    const float *running_mean;
    const float *running_var;
    int64_t num_features;        /* entries in each of the four buffers */
    float eps;
    const char *name;            /* for error messages; may be NULL */
} aimet_batchnorm_t;

/* ------------------------------------------------------ batch-norm folding */

typedef enum aimet_bn_position {
    AIMET_BN_AFTER_LAYER = 0,    /* layer -> bn   (AIMET: fold backward) */
    AIMET_BN_BEFORE_LAYER = 1    /* bn -> layer   (AIMET: fold forward)  */
} aimet_bn_position_t;

/* Whether `bn` at `position` can be folded into `layer`: *foldable = 1 or 0.
 * A BN before the layer folds only into a non-transposed layer with groups 1
 * and no padding; a BN after a transposed conv only when groups is 1 or its
 * input channels. Shapes are checked as by aimet_bn_fold. */
aimet_status_t aimet_bn_fold_check(const aimet_layer_t *layer, const aimet_batchnorm_t *bn,
                                   int32_t position, int32_t *foldable);

/* Fold `bn` into `layer` in place, writing layer->weight and
 * layer->bias. layer->bias must be a buffer of out-channel floats: pass zeros
 * for a layer that had no bias. Errors: unfoldable pair, channel mismatch,
 * sigma == 0, NaN/inf anywhere. */
aimet_status_t aimet_bn_fold(aimet_layer_t *layer, const aimet_batchnorm_t *bn, int32_t position);

/* ---------------------------------------------------- cross-layer scaling */

/* Scale one CLS set in place: `count` == 2 for a pair (L1, L2) or 3
 * for a triplet (L1, DW, L3) whose middle layer is depthwise. Layers must be
 * convs (1-D/2-D, plain or transposed). `scales` receives the factors: C
 * floats for a pair, 2*C for a triplet (S12 then S23), C = channels between;
 * `scales_len` is its size in floats. Biases may be NULL. */
aimet_status_t aimet_cls_scale_set(aimet_layer_t *const *layers, int32_t count,
                                   float *scales, int64_t scales_len);

/* ---------------------------------------------------------- high-bias fold */

/* High-bias fold for one scaled pair: moves the part of layer1's
 * bias above beta - 3|gamma| (with ReLU between) into layer2's bias, using the
 * BN that was folded into layer1 and the pair's CLS scale factor (`scale_len`
 * == layer1's out-channels). Only gamma/beta of `bn` are read (mean/var may
 * be NULL). *applied = 0 when a bias is missing (nothing changes), else 1. */
aimet_status_t aimet_hbf_fold_pair(aimet_layer_t *layer1, aimet_layer_t *layer2,
                                   const aimet_batchnorm_t *bn, const float *scale,
                                   int64_t scale_len, int32_t relu_between, int32_t *applied);

/* ------------------------------------------------------------------ models
 *
 * A model is a graph (ONNX semantics: nodes with op types, attributes and
 * named values; float32 parameters by name). Load one from ONNX, or build one
 * node by node; run auto-mode transforms on it; read parameters back; save
 * it as ONNX. Every transform is atomic: on error the model is unchanged.
 * A model handle serves one thread at a time (see "Handles" above).
 */
typedef struct aimet_model aimet_model_t;

/* Loads an ONNX file. *out: caller owns; free with aimet_model_free. */
aimet_status_t aimet_model_load_onnx(const char *path, aimet_model_t **out);

/* Parses a serialized ONNX model (`data` is copied). *out: caller owns. */
aimet_status_t aimet_model_load_onnx_bytes(const void *data, int64_t size, aimet_model_t **out);

/* Writes the model as ONNX through a temporary file renamed over `path`:
 * a failed save leaves no half-written file and any old file intact. */
aimet_status_t aimet_model_save_onnx(aimet_model_t *model, const char *path);

/* An empty model to build with the calls below. *out: caller owns. */
aimet_status_t aimet_model_create(aimet_model_t **out);

/* Releases a model; NULL is accepted (AIMET_STATUS_OK). A freed handle, a
 * handle of another kind or a model in use by another thread is refused (see
 * "Handles" above) and nothing is freed. */
aimet_status_t aimet_model_free(aimet_model_t *model);

/* Graph building. Names are copied. A shape entry of -1 is a free dimension. */
aimet_status_t aimet_model_add_input(aimet_model_t *model, const char *name, const int64_t *shape, int32_t ndim);
aimet_status_t aimet_model_add_output(aimet_model_t *model, const char *name);
aimet_status_t aimet_model_add_node(aimet_model_t *model, const char *op_type, const char *name,
                                    const char *const *inputs, int32_t num_inputs,
                                    const char *const *outputs, int32_t num_outputs);
aimet_status_t aimet_model_set_attr_int(aimet_model_t *model, const char *node, const char *attr, int64_t value);
aimet_status_t aimet_model_set_attr_ints(aimet_model_t *model, const char *node, const char *attr,
                                         const int64_t *values, int32_t count);
aimet_status_t aimet_model_set_attr_float(aimet_model_t *model, const char *node, const char *attr, float value);

/* Parameters. set: creates or replaces (data and shape are copied; values
 * must be finite). param_shape: writes up to `capacity` dims and the rank.
 * get: copies `count` floats (must equal the element count) into `data`. */
aimet_status_t aimet_model_set_param(aimet_model_t *model, const char *name, const float *data,
                                     const int64_t *shape, int32_t ndim);
aimet_status_t aimet_model_param_shape(aimet_model_t *model, const char *name, int64_t *shape,
                                       int32_t capacity, int32_t *ndim);
aimet_status_t aimet_model_get_param(aimet_model_t *model, const char *name, float *data, int64_t count);

/* Transforms. Each replaces the model's report. */
typedef enum aimet_equalize_flags {
    AIMET_EQUALIZE_DEFAULT = 0,
    AIMET_EQUALIZE_KEEP_RELU6 = 1,          /* do not turn ReLU6 (Clip 0..6) into ReLU */
    AIMET_EQUALIZE_NO_BN_FOLD = 2,
    AIMET_EQUALIZE_NO_SCALE = 4,
    AIMET_EQUALIZE_NO_HIGH_BIAS_FOLD = 8
} aimet_equalize_flags_t;

/* equalize_model: BN fold, ReLU6 -> ReLU, CLS, high-bias fold, limited to the
 * nodes between the named start and output nodes/values when given (NULL/0:
 * the whole model). `flags`: aimet_equalize_flags_t bits. */
aimet_status_t aimet_model_equalize(aimet_model_t *model, int32_t flags,
                                    const char *const *start_names, int32_t num_starts,
                                    const char *const *output_names, int32_t num_outputs);

/* fold_given_batch_norms by node names; positions[i] is aimet_bn_position_t. */
aimet_status_t aimet_model_fold_batch_norms(aimet_model_t *model, const char *const *layers,
                                            const char *const *batchnorms, const int32_t *positions,
                                            int32_t count);

/* Replaces ReLU6 by ReLU in the nodes named (all Clip 0..6 nodes when names is NULL). */
aimet_status_t aimet_model_replace_relu6(aimet_model_t *model, const char *const *names, int32_t count);

/* What the last transform did, as counts. Any pointer may be NULL. */
aimet_status_t aimet_model_report_counts(aimet_model_t *model, int32_t *folded, int32_t *relu6_replaced,
                                         int32_t *cls_sets, int32_t *high_bias_folded);

/* The factors of CLS set `set`, pair `pair` (0, or 1 for a triplet's second
 * pair) of the last report: *count gets their number; they are copied into
 * `scales` when `capacity` suffices (query with scales NULL). */
aimet_status_t aimet_model_report_scales(aimet_model_t *model, int32_t set, int32_t pair, float *scales,
                                         int64_t capacity, int64_t *count);

/* JSON texts, query-size-then-fill: with buffer NULL (or too small) *length
 * gets the size needed including the terminating NUL; with a large enough
 * buffer it is filled and *length set. report: the last transform's folded
 * pairs, ReLU6 replacements, CLS sets (layers, relu flags, factor ranges; the
 * factors themselves through aimet_model_report_scales), the high-bias-fold
 * count, and the weight/bias parameter names of every layer it changed. describe: inputs, outputs, nodes (name, op, inputs,
 * outputs, attributes) and parameters (name, shape). */
aimet_status_t aimet_model_report_json(aimet_model_t *model, char *buffer, int64_t capacity, int64_t *length);
aimet_status_t aimet_model_describe_json(aimet_model_t *model, char *buffer, int64_t capacity, int64_t *length);

/* --------------------------------------------------------------- running
 *
 * Inference on the CPU (float32 NCHW data, any batch size; int64 and bool
 * inputs where the graph declares them). Inputs are described by
 * aimet_tensor_t over caller buffers (borrowed for the call). A run returns
 * an aimet_results_t: the graph outputs, then the values named in `capture`
 * (any node output, for looking inside the model).
 */

/* Element types of tensors crossing the ABI. */
typedef enum aimet_dtype {
    AIMET_DTYPE_FLOAT32 = 0,     /* float */
    AIMET_DTYPE_INT64 = 1,       /* int64_t */
    AIMET_DTYPE_BOOL = 2,        /* uint8_t, 0 or 1 */
} aimet_dtype_t;

typedef struct aimet_tensor {
    const char *name;            /* graph input name */
    const void *data;            /* C-contiguous elements of `dtype` */
    const int64_t *shape;
    int32_t ndim;
    int32_t dtype;               /* aimet_dtype_t; 0 (float32) when zero-initialized */
} aimet_tensor_t;

typedef struct aimet_results aimet_results_t;

/* Runs the model. *out: caller owns; free with aimet_results_free. */
aimet_status_t aimet_model_run(aimet_model_t *model, const aimet_tensor_t *inputs, int32_t num_inputs,
                               const char *const *capture, int32_t num_capture, aimet_results_t **out);

/* Number of result tensors (outputs, then captured values). */
aimet_status_t aimet_results_count(const aimet_results_t *results, int32_t *count);

/* Result `index`: name, data, shape and rank; borrowed, valid until
 * aimet_results_free. Any out-pointer may be NULL. `*data` is the float32
 * data, NULL for an int64 or bool result (read it with aimet_results_get_data). */
aimet_status_t aimet_results_get(const aimet_results_t *results, int32_t index, const char **name,
                                 const float **data, const int64_t **shape, int32_t *ndim);

/* Result `index`'s element type (aimet_dtype_t) and data; `*data` is
 * borrowed, valid until aimet_results_free. Either out-pointer may be NULL.
 * (aimet_results_get gives float32 results' data; this one any result's.) */
aimet_status_t aimet_results_get_data(const aimet_results_t *results, int32_t index, int32_t *dtype,
                                      const void **data);

/* Releases results; NULL is accepted. Pointers from aimet_results_get dangle
 * afterwards (this cannot be detected). Misuse as for aimet_model_free. */
aimet_status_t aimet_results_free(aimet_results_t *results);

/* ------------------------------------------------------ quantization sim
 *
 * AIMET's QuantizationSimModel: a copy of a model whose weights and op
 * outputs pass through fake quantizers (quantize + dequantize), placed as an
 * AIMET quantsim config says (default: AIMET's classic default_config.json —
 * symmetric per-tensor weights, asymmetric activations, biases not quantized,
 * Conv/Gemm + Relu/Clip and Add + Relu quantized once after the activation).
 * Flow: create; begin_calibration; run on calibration data (observes);
 * end_calibration (computes the activation encodings); run (simulates).
 */
typedef struct aimet_quantsim aimet_quantsim_t;

typedef enum aimet_quant_scheme {
    AIMET_QUANT_SCHEME_TF = 1,              /* min-max */
    AIMET_QUANT_SCHEME_TF_ENHANCED = 2      /* SQNR search over a histogram */
} aimet_quant_scheme_t;

typedef struct aimet_quantsim_options {
    int32_t quant_scheme;                   /* aimet_quant_scheme_t */
    int32_t param_bitwidth;                 /* 2..16 */
    int32_t activation_bitwidth;            /* 4..16 */
    int32_t per_channel;                    /* -1: as the config says; 0: per-tensor; 1: per-channel weights */
    const char *config_json;                /* AIMET quantsim config (JSON text, copied); NULL: the default */
} aimet_quantsim_options_t;

/* A simulation of `model` as it is now (copied). *out: caller owns; free with
 * aimet_quantsim_free. Weight encodings are computed here. */
aimet_status_t aimet_quantsim_create(aimet_model_t *model, const aimet_quantsim_options_t *options,
                                     aimet_quantsim_t **out);

/* Releases a simulation; NULL is accepted. Misuse as for aimet_model_free. */
aimet_status_t aimet_quantsim_free(aimet_quantsim_t *sim);

/* Starts observing activations (runs then pass values through unquantized). */
aimet_status_t aimet_quantsim_begin_calibration(aimet_quantsim_t *sim);

/* Computes every activation encoding from what the runs observed. */
aimet_status_t aimet_quantsim_end_calibration(aimet_quantsim_t *sim);

/* Runs the simulated model (fails before the first end_calibration). */
aimet_status_t aimet_quantsim_run(aimet_quantsim_t *sim, const aimet_tensor_t *inputs, int32_t num_inputs,
                                  const char *const *capture, int32_t num_capture, aimet_results_t **out);

/* Reads an AIMET encodings JSON file and uses its param_encodings (by
 * parameter name); with `freeze` they are kept by later calibrations
 * (set_and_freeze_param_encodings). A file naming parameters this model does
 * not have is refused. */
aimet_status_t aimet_quantsim_load_param_encodings(aimet_quantsim_t *sim, const char *path, int32_t freeze);

/* Writes the encodings (param_encodings, activation_encodings, version) as
 * AIMET's JSON, atomically. */
aimet_status_t aimet_quantsim_save_encodings(aimet_quantsim_t *sim, const char *path);

/* The same JSON, query-size-then-fill (see aimet_model_report_json). */
aimet_status_t aimet_quantsim_encodings_json(aimet_quantsim_t *sim, char *buffer, int64_t capacity, int64_t *length);

/* ------------------------------------------------------------- AdaRound
 *
 * AIMET's Adaround.apply_adaround: layer by layer (Conv any groups,
 * ConvTranspose, Gemm/MatMul with a constant weight), learns whether each
 * weight rounds up or down so that the layer's output (after the activation
 * that follows it) on calibration data stays close to the float model's.
 * The model's weights are replaced by the adarounded, dequantized values and
 * the weight encodings are written as AIMET's JSON (param_encodings only);
 * QuantizationSim loads them with aimet_quantsim_load_param_encodings(freeze 1).
 */

/* Called after each layer on the calling thread: the node name, its index and
 * the number of layers, optimisation speed, and the reconstruction MSE on the
 * cached data with round-to-nearest and with the adarounded weights;
 * kept_nearest is 1 when AdaRound did not beat nearest rounding there.
 * Return 0 to go on; anything else stops AdaRound with AIMET_STATUS_CANCELLED
 * (the model and the encodings file are then left as they were). */
typedef int32_t (*aimet_adaround_progress_fn)(void *user, const char *layer, int32_t index, int32_t count,
                                           double iterations_per_second, double mse_nearest,
                                           double mse_adaround, int32_t kept_nearest);

typedef struct aimet_adaround_options {
    int32_t num_batches;           /* batches used (the first ones); 0: all given */
    int32_t iterations;            /* per layer; 0: AIMET's default (10000, 15000 when a bitwidth < 8) */
    float reg_param;               /* weight of the rounding loss (0.01) */
    float beta_start, beta_end;    /* beta annealed from start to end (20, 2) */
    float warm_start;              /* fraction of iterations without rounding loss (0.2) */
    int32_t param_bitwidth;        /* 2..16 (4) */
    int32_t quant_scheme;          /* aimet_quant_scheme_t (TF_ENHANCED) */
    int32_t per_channel;           /* -1: as the config says (per tensor by default); 0; 1 */
    const char *config_json;       /* AIMET quantsim config (JSON text); NULL: the default */
    const char *const *ignore;     /* layers left alone: node, weight or module names */
    int32_t num_ignore;
    const char *const *override_names;  /* per-layer bitwidths: names ... */
    const int32_t *override_bitwidths;  /* ... and bitwidths */
    int32_t num_overrides;
    int32_t batch_size;            /* cached samples per optimisation step (32) */
    int32_t position_samples;      /* >0: a Conv step uses this many output positions drawn from all
                                    * cached images instead of batch_size whole images; 0: off */
    uint64_t seed;                 /* mini-batch draws; the same seed gives the same weights */
    int32_t threads;               /* worker threads; 0: one per processor */
    aimet_adaround_progress_fn progress;   /* NULL: silent */
    void *progress_user;
} aimet_adaround_options_t;

/* Fills *options with AIMET's defaults (the values in brackets above). */
aimet_status_t aimet_adaround_options_default(aimet_adaround_options_t *options);

/* Runs AdaRound on `model`. `data`: num_data_batches × inputs_per_batch
 * tensors, batch-major (batch b's inputs at data[b * inputs_per_batch ...]),
 * each naming a graph input; batch axis 0. Fewer batches than
 * options->num_batches, an empty data set, a bitwidth outside 2..16, a scheme
 * other than TF / TF-enhanced, or an ignore/override name that is no layer of
 * the model is an error. `encodings_path` (NULL: not written) gets the weight
 * encodings, atomically. On any error the model and the file are left as
 * they were. The per-layer report: aimet_model_adaround_report_json. */
aimet_status_t aimet_model_adaround(aimet_model_t *model, const aimet_tensor_t *data, int32_t num_data_batches,
                                    int32_t inputs_per_batch, const aimet_adaround_options_t *options,
                                    const char *encodings_path);

/* The last AdaRound on this model as JSON, query-size-then-fill (see
 * aimet_model_report_json): {"layers": [{"name", "weight", "bitwidth",
 * "iterations", "seconds", "iterations_per_second", "mse_nearest",
 * "mse_adaround", "kept_nearest"}, ...], "encodings": {"param_encodings": ...}}.
 * Before any AdaRound on the model: {"layers": [], "encodings": null}. */
aimet_status_t aimet_model_adaround_report_json(aimet_model_t *model, char *buffer, int64_t capacity, int64_t *length);

/* A copy of the model (graph, weights, unknown ONNX fields), independent of
 * the original. *out: caller owns; free with aimet_model_free. */
aimet_status_t aimet_model_clone(aimet_model_t *model, aimet_model_t **out);

#ifdef __cplusplus
}
#endif

#endif /* AIMETCLE_H */
