/* Shared test harness of the C test programs: CHECK counts passes and
 * failures; CHECK_ERROR expects a status and a phrase of the message. */
#ifndef AIMETCLE_TEST_CHECK_H
#define AIMETCLE_TEST_CHECK_H

#include "aimetcle.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, "\n");                                             \
        }                                                                      \
    } while (0)

/* An expected failure: the status and a phrase of the message. */
#define CHECK_ERROR(call, status, phrase)                                      \
    do {                                                                       \
        aimet_status_t s_ = (call);                                            \
        CHECK(s_ == (status), "status %d (%s), expected %d; message: %s", s_,  \
              aimet_status_string(s_), (status), aimet_last_error());          \
        CHECK(strstr(aimet_last_error(), (phrase)) != NULL,                    \
              "message '%s' lacks '%s'", aimet_last_error(), (phrase));        \
    } while (0)

#define CHECK_OK(call) CHECK((call) == AIMET_STATUS_OK, "%s", aimet_last_error())

static inline int close_to(float a, float b) { return fabsf(a - b) <= 1e-5f * fmaxf(1.0f, fabsf(b)); }

static inline int all_close(const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++)
        if (!close_to(a[i], b[i])) return 0;
    return 1;
}

/* A model or a simulation run, so one helper can drive either. */
typedef aimet_status_t (*run_fn)(void *target, const aimet_tensor_t *inputs, int32_t num_inputs,
                                 const char *const *capture, int32_t num_capture, aimet_results_t **out);

static inline aimet_status_t run_model(void *m, const aimet_tensor_t *in, int32_t n, const char *const *c, int32_t nc,
                                       aimet_results_t **out) {
    return aimet_model_run((aimet_model_t *)m, in, n, c, nc, out);
}

static inline aimet_status_t run_sim(void *s, const aimet_tensor_t *in, int32_t n, const char *const *c, int32_t nc,
                                     aimet_results_t **out) {
    return aimet_quantsim_run((aimet_quantsim_t *)s, in, n, c, nc, out);
}

/* The whole file, malloc'ed (NULL if it cannot be read); *size set. */
static inline char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)n + 1);
    *size = fread(data, 1, (size_t)n, f);
    fclose(f);
    return data;
}

/* Entries of a folder, not counting . and .. (-1 if it cannot be read). */
static inline int folder_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* A model's JSON text (aimet_model_describe_json, _report_json: query the
 * size, then fill), malloc'ed; NULL on error. */
static inline char *model_json(aimet_status_t (*get)(aimet_model_t *, char *, int64_t, int64_t *), aimet_model_t *m) {
    int64_t length = 0;
    if (get(m, NULL, 0, &length) != AIMET_STATUS_OK) return NULL;
    char *text = malloc((size_t)length);
    if (get(m, text, length, &length) != AIMET_STATUS_OK) {
        free(text);
        return NULL;
    }
    return text;
}

/* Prints the closing line and returns the exit code. */
static inline int report_results(void) {
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}

#endif
