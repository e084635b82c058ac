/* Shared test harness of the C test programs: CHECK counts passes and
 * failures; CHECK_ERROR expects a status and a phrase of the message. */
#ifndef AIMETCLE_TEST_CHECK_H
#define AIMETCLE_TEST_CHECK_H

#include "aimetcle.h"

#include <math.h>
#include <stdio.h>
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

/* Prints the closing line and returns the exit code. */
static inline int report_results(void) {
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}

#endif
