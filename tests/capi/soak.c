/* FFI soak test of the C ABI (run by scripts/test_capi.sh; a short run also under
 * valgrind): THREADS threads share one model and each makes ITERATIONS calls that mix
 * valid predictions (checked bit for bit against the single-thread result) with invalid
 * ones (bad token values, wrong shapes, NULL pointers, a missing table, freed and foreign
 * handles), each of which must fail with its own status and a message naming the fault
 * in that thread's aam_last_error(). Resident memory is read with every thread idle
 * after a warm-up round and again after the soak: it must stay within 5%, and every
 * handle must be freed at the end.
 *
 * usage: soak MODEL_DIR ITERATIONS [WARMUP]
 */
/* pthread barriers are POSIX.1-2001 (not in plain C11). */
#define _POSIX_C_SOURCE 200112L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam.h"
#include "common.h"

#define THREADS 8
/* Call kinds, cycled through by every thread from its own offset. */
#define KINDS 10

static AamModel *model;
static AamModelInfo info;
static const size_t batch = 2, n_asv = 4;
static uint8_t *tokens_u8;
static int64_t *tokens_i64, *tokens_bad;
static float *reference;
static size_t reference_len;
static pthread_barrier_t barrier;

struct worker {
    int id;
    long warmup, iterations;
    long failures;
    char first_failure[512];
};

/* Resident set size of this process, kB (Linux VmRSS). */
static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

static void make_tokens(void) {
    size_t w = info.token_width, n = batch * n_asv * w;
    tokens_u8 = calloc(n, 1);
    tokens_i64 = calloc(n, sizeof *tokens_i64);
    tokens_bad = calloc(n, sizeof *tokens_bad);
    for (size_t r = 0; r < batch * n_asv; r++) {
        tokens_i64[r * w] = 5;
        for (size_t k = 1; k < w && k <= 20 + 3 * r; k++) tokens_i64[r * w + k] = 1 + (int64_t)((k * 5 + r) % 4);
    }
    for (size_t i = 0; i < n; i++) tokens_u8[i] = (uint8_t)tokens_i64[i];
    memcpy(tokens_bad, tokens_i64, n * sizeof *tokens_bad);
    tokens_bad[w + 3] = 9; /* outside the vocabulary */
}

/* An invalid call must fail with `want`, leave *out NULL and explain itself with `word`. */
static int refused(AamStatus got, AamStatus want, const void *out, const char *word) {
    const char *e = aam_last_error();
    return got == want && out == NULL && e != NULL && strstr(e, word) != NULL;
}

/* One call of kind `kind`; 0 when it behaved as it must. */
static int call(int kind) {
    AamPredictions *p = NULL;
    size_t len = 0;
    switch (kind) {
    case 0: case 1: case 2: case 3: case 4: { /* valid: u8 and i64 give the reference */
        float *got = predict_copy(model, kind % 2 ? (const void *)tokens_u8 : (const void *)tokens_i64,
                                  kind % 2 ? AAM_DTYPE_U8 : AAM_DTYPE_I64, batch, n_asv, info.token_width, &len);
        int ok = got && len == reference_len && memcmp(got, reference, len * sizeof *got) == 0;
        free(got);
        return !ok;
    }
    case 5: /* a token outside the vocabulary */
        return !refused(aam_predict_tokens(model, tokens_bad, AAM_DTYPE_I64, batch, n_asv, info.token_width, &p),
                        AAM_STATUS_INVALID_ARGUMENT, p, "9");
    case 6: /* a row width other than the model's */
        return !refused(aam_predict_tokens(model, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width - 1, &p),
                        AAM_STATUS_INVALID_ARGUMENT, p, "shape");
    case 7: /* NULL tokens, then an unknown dtype */
        if (!refused(aam_predict_tokens(model, NULL, AAM_DTYPE_I64, batch, n_asv, info.token_width, &p),
                     AAM_STATUS_NULL_ARGUMENT, p, "tokens is NULL"))
            return 1;
        return !refused(aam_predict_tokens(model, tokens_i64, 42, batch, n_asv, info.token_width, &p),
                        AAM_STATUS_INVALID_ARGUMENT, p, "dtype");
    case 8: /* a table that does not exist */
        return !refused(aam_predict_biom(model, "/nonexistent/soak-table.biom", &p), AAM_STATUS_IO, p,
                        "/nonexistent/soak-table.biom");
    default: { /* handles: NULL model, a foreign pointer, accessors on NULL predictions */
        size_t count = 0;
        int bad = 0;
        bad |= !refused(aam_predict_tokens(NULL, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width, &p),
                        AAM_STATUS_INVALID_HANDLE, p, "model is NULL");
        bad |= !refused(aam_predict_tokens((const AamModel *)&count, tokens_i64, AAM_DTYPE_I64, batch, n_asv,
                                           info.token_width, &p),
                        AAM_STATUS_INVALID_HANDLE, p, "not a live handle");
        bad |= !refused(aam_predictions_count(NULL, &count), AAM_STATUS_INVALID_HANDLE, NULL, "predictions is NULL");
        bad |= !refused(aam_predictions_count((const AamPredictions *)&count, &count), AAM_STATUS_INVALID_HANDLE, NULL,
                        "not a live handle");
        aam_predictions_free(NULL);
        return bad;
    }
    }
}

static void *run(void *arg) {
    struct worker *w = arg;
    for (long phase = 0; phase < 2; phase++) {
        long n = phase == 0 ? w->warmup : w->iterations;
        for (long i = 0; i < n; i++) {
            int kind = (int)((i + w->id) % KINDS);
            if (call(kind)) {
                if (w->failures++ == 0)
                    snprintf(w->first_failure, sizeof w->first_failure, "thread %d call %ld (kind %d): %s", w->id,
                             i, kind, aam_last_error() ? aam_last_error() : "(no message)");
            }
        }
        pthread_barrier_wait(&barrier); /* the main thread reads the RSS with every worker idle */
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR ITERATIONS [WARMUP]\n", argv[0]);
        return 2;
    }
    long iterations = atol(argv[2]), warmup = argc > 3 ? atol(argv[3]) : iterations / 10;
    if (aam_model_load(argv[1], NULL, &model) != AAM_STATUS_OK || aam_model_info(model, &info) != AAM_STATUS_OK) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], aam_last_error());
        return 1;
    }
    make_tokens();
    reference = predict_copy(model, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width, &reference_len);
    if (!reference) {
        fprintf(stderr, "reference prediction failed: %s\n", aam_last_error());
        return 1;
    }
    pthread_barrier_init(&barrier, NULL, THREADS + 1);
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (struct worker){.id = t, .warmup = warmup, .iterations = iterations};
        pthread_create(&threads[t], NULL, run, &workers[t]);
    }
    pthread_barrier_wait(&barrier);
    long after_warmup = rss_kb();
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier);
    long after_soak = rss_kb();
    pthread_barrier_wait(&barrier);
    long failures = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        failures += workers[t].failures;
        if (workers[t].failures) fprintf(stderr, "FAIL %s (%ld in this thread)\n", workers[t].first_failure, workers[t].failures);
    }
    pthread_barrier_destroy(&barrier);
    double growth = 100.0 * (double)(after_soak - after_warmup) / (double)after_warmup;
    printf("soak: %d threads x %ld calls (after %ld warm-up calls each): %ld failed; RSS %ld kB after warm-up, %ld kB after the soak (%+.2f%%)\n",
           THREADS, iterations, warmup, failures, after_warmup, after_soak, growth);
    int bad = failures != 0;
    if (growth > 5.0) {
        fprintf(stderr, "FAIL resident memory grew by %.2f%% (limit 5%%)\n", growth);
        bad = 1;
    }
    free(reference);
    free(tokens_u8);
    free(tokens_i64);
    free(tokens_bad);
    aam_model_free(model);
    if (aam_live_handles() != 0) {
        fprintf(stderr, "FAIL %zu handles still live\n", aam_live_handles());
        bad = 1;
    }
    return bad;
}
