// A persistent pool of worker threads for the core's parallel loops
// (Parallel.swift). Worker w of a job always runs on the same thread (the
// caller is worker 0), so a worker finds its share of the data in its own
// cache from one call to the next; idle helpers spin briefly before they
// sleep, so back-to-back jobs (an executor's ops, AdaRound's steps) start
// in well under a microsecond instead of a thread wake-up each.
//
// One job at a time: a second caller (another thread, or a job nested in a
// job) gets -1 and runs its loop another way.
#include "aimet_kernels.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

enum { MAX_HELPERS = 63, SPIN_NANOSECONDS = 200000 };

static struct {
    // (job counter << 8) | workers of the current job: what helpers wait on.
    _Atomic unsigned word;
    _Atomic int busy;       // a job owns the pool
    _Atomic int remaining;  // helpers of the current job still running
    _Atomic int sleepers;   // helpers asleep (or about to be) on `word`
    aimetk_task task;
    void *context;
    int helpers;            // helper threads running
    pthread_mutex_t start;  // guards starting them
} pool = {.start = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local int is_helper;

static void cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void wait_word(unsigned seen) {
#if defined(__linux__)
    syscall(SYS_futex, &pool.word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
#else
    (void)seen;
    sched_yield();
#endif
}

static void wake_all(void) {
#if defined(__linux__)
    syscall(SYS_futex, &pool.word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#endif
}

static void *helper_main(void *arg) {
    // The helper's index (1 ... helpers) and the word before the job it was started for.
    const int index = (int)((uintptr_t)arg & 0xFF);
    unsigned seen = (unsigned)((uintptr_t)arg >> 8);
    is_helper = 1;
    for (;;) {
        unsigned word = atomic_load_explicit(&pool.word, memory_order_acquire);
        if (word == seen) {
            // Spin for a while (the next job usually follows at once), then sleep.
            long long start = now_ns();
            for (int spins = 0; (word = atomic_load_explicit(&pool.word, memory_order_acquire)) == seen; spins++) {
                if ((spins & 63) == 63 && now_ns() - start > SPIN_NANOSECONDS) {
                    atomic_fetch_add(&pool.sleepers, 1);
                    if (atomic_load(&pool.word) == seen) wait_word(seen);
                    atomic_fetch_sub(&pool.sleepers, 1);
                    start = now_ns();
                }
                cpu_relax();
            }
        }
        seen = word;
        // Only the job's own helpers read its fields: the job cannot end (and
        // the next one cannot change them) before they are done.
        if (index < (int)(word & 0xFF)) {
            pool.task(pool.context, index);
            atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_release);
        }
    }
    return NULL;
}

// After fork() only the forking thread exists in the child: forget the helpers.
static void reset_in_child(void) {
    pool.helpers = 0;
    atomic_store(&pool.busy, 0);
    atomic_store(&pool.remaining, 0);
    atomic_store(&pool.sleepers, 0);
    pthread_mutex_init(&pool.start, NULL);
}

static int start_helpers(int wanted) {
    pthread_mutex_lock(&pool.start);
    static int registered;
    if (!registered) {
        pthread_atfork(NULL, NULL, reset_in_child);
        registered = 1;
    }
    while (pool.helpers < wanted) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t thread;
        uintptr_t arg = (uintptr_t)atomic_load(&pool.word) << 8 | (uintptr_t)(pool.helpers + 1);
        int failed = pthread_create(&thread, &attr, helper_main, (void *)arg);
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.helpers++;
    }
    int helpers = pool.helpers;
    pthread_mutex_unlock(&pool.start);
    return helpers;
}

int aimetk_pool_run(int workers, aimetk_task task, void *context) {
    if (workers < 2 || workers > MAX_HELPERS + 1 || is_helper) return -1;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&pool.busy, &expected, 1)) return -1;
    if (pool.helpers < workers - 1 && start_helpers(workers - 1) < workers - 1) {
        atomic_store(&pool.busy, 0);
        return -1;
    }
    pool.task = task;
    pool.context = context;
    atomic_store_explicit(&pool.remaining, workers - 1, memory_order_relaxed);
    unsigned word = atomic_load_explicit(&pool.word, memory_order_relaxed);
    atomic_store(&pool.word, ((word >> 8) + 1) << 8 | (unsigned)workers);  // releases the job's fields
    if (atomic_load(&pool.sleepers) > 0) wake_all();
    task(context, 0);
    // Wait for the helpers: spin, then (a helper may have lost its processor
    // to another program) yield between checks.
    long long start = 0;
    for (int spins = 0; atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0; spins++) {
        if ((spins & 63) == 63) {
            if (!start) start = now_ns();
            else if (now_ns() - start > SPIN_NANOSECONDS / 4) sched_yield();
        }
        cpu_relax();
    }
    atomic_store_explicit(&pool.busy, 0, memory_order_release);
    return 0;
}
