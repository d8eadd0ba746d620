/* Tests of the C ABI on the shipped model (run by scripts/test_capi.sh, also under valgrind):
 * every misuse returns an error code with a message; predictions from THREADS threads ×
 * ITERATIONS calls equal the single-thread result bit for bit; u8 and i64 token buffers agree;
 * BIOM prediction matches the token path's shapes; ONNX Runtime (when built in) equals tract
 * and unavailable execution providers are refused or fall back as asked.
 *
 * usage: capi_test MODEL_DIR TABLE.biom ITERATIONS
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam.h"
#include "common.h"

#define THREADS 8

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        checks++;                                                           \
        if (!(cond)) {                                                      \
            failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, " [last error: %s]\n", aam_last_error());       \
        }                                                                   \
    } while (0)

static AamModel *model;
static AamModelInfo info;
static size_t batch = 3, n_asv = 5;
static int64_t *tokens_i64;
static uint8_t *tokens_u8;
static float *reference;
static size_t reference_len;
static long iterations;

/* Deterministic tokens: START + a few nucleotides; sample 2 is all padding. */
static void make_tokens(void) {
    size_t w = info.token_width, n = batch * n_asv * w;
    tokens_i64 = calloc(n, sizeof *tokens_i64);
    tokens_u8 = calloc(n, 1);
    for (size_t b = 0; b < batch; b++) {
        if (b == 2) continue;
        for (size_t s = 0; s < n_asv; s++) {
            size_t row = (b * n_asv + s) * w, len = 10 + 7 * s + b;
            tokens_i64[row] = 5;
            for (size_t k = 1; k <= len && k < w; k++) tokens_i64[row + k] = 1 + (int64_t)((k * 7 + s * 3 + b) % 4);
        }
    }
    for (size_t i = 0; i < n; i++) tokens_u8[i] = (uint8_t)tokens_i64[i];
}

static void *worker(void *arg) {
    long *mismatches = arg;
    for (long i = 0; i < iterations; i++) {
        size_t len = 0;
        float *got = predict_copy(model, i % 2 ? (const void *)tokens_u8 : (const void *)tokens_i64,
                                  i % 2 ? AAM_DTYPE_U8 : AAM_DTYPE_I64, batch, n_asv, info.token_width, &len);
        if (!got || len != reference_len || memcmp(got, reference, len * sizeof *got) != 0) (*mismatches)++;
        free(got);
    }
    return NULL;
}

/* Largest |a - b| over n floats. */
static float max_abs_diff(const float *a, const float *b, size_t n) {
    float worst = 0;
    for (size_t k = 0; k < n; k++) {
        float d = a[k] > b[k] ? a[k] - b[k] : b[k] - a[k];
        if (!(d <= worst)) worst = d; /* also catches NaN */
    }
    return worst;
}

/* Backends and execution providers: tract refuses GPU providers unless fallback is allowed;
 * ONNX Runtime (when built in) equals tract within 1e-4 and reports the provider used. */
static void backends(const char *dir) {
    AamModel *m = NULL;
    AamParams p = aam_default_params();
    CHECK(strcmp(aam_model_execution_provider(model), "cpu") == 0 && aam_model_fallback_reason(model) == NULL, "tract runs on cpu");
    CHECK(aam_model_execution_provider(NULL) == NULL && aam_model_fallback_reason(NULL) == NULL, "NULL model placement");
    p.provider = AAM_PROVIDER_CUDA;
    CHECK(aam_model_load(dir, &p, &m) == AAM_STATUS_UNAVAILABLE && m == NULL && strstr(aam_last_error(), "CPU only"), "tract + cuda refused");
    p.allow_fallback = 1;
    CHECK(aam_model_load(dir, &p, &m) == AAM_STATUS_OK && strcmp(aam_model_execution_provider(m), "cpu") == 0 && aam_model_fallback_reason(m) != NULL, "tract + cuda with fallback");
    aam_model_free(m);
    m = NULL;
    p = aam_default_params();
    p.backend = AAM_BACKEND_ORT;
    CHECK(aam_has_backend(AAM_BACKEND_TRACT) == 1 && aam_has_backend(7) == 0, "has_backend");
    if (!aam_has_backend(AAM_BACKEND_ORT)) {
        CHECK(getenv("AAM_REQUIRE_ORT") == NULL, "AAM_REQUIRE_ORT is set but libaam has no ONNX Runtime backend");
        CHECK(aam_model_load(dir, &p, &m) == AAM_STATUS_UNSUPPORTED && strstr(aam_last_error(), "ort"), "ort backend not built");
        return;
    }
    p.ort_library = "/nonexistent/libonnxruntime.so";
    CHECK(aam_model_load(dir, &p, &m) == AAM_STATUS_UNAVAILABLE && strstr(aam_last_error(), "no such file"), "missing ONNX Runtime library");
    p.ort_library = NULL; /* ORT_DYLIB_PATH */
    p.ort_threads = 2;
    CHECK(aam_model_load(dir, &p, &m) == AAM_STATUS_OK, "load on ONNX Runtime");
    if (m) {
        CHECK(strcmp(aam_model_execution_provider(m), "cpu") == 0 && aam_model_fallback_reason(m) == NULL, "ort on cpu");
        AamModel *keep = model;
        size_t len = 0;
        model = m;
        float *got = predict_copy(model, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width, &len);
        model = keep;
        CHECK(got && len == reference_len && max_abs_diff(got, reference, len) <= 1e-4f, "ort == tract within 1e-4 (max %g)", got ? (double)max_abs_diff(got, reference, len) : -1.0);
        free(got);
        aam_model_free(m);
        m = NULL;
    }
    p.provider = AAM_PROVIDER_CUDA;
    CHECK(aam_model_load(dir, &p, &m) == AAM_STATUS_UNAVAILABLE && strstr(aam_last_error(), "CUDA"), "cuda on the CPU library refused: %s", aam_last_error());
    p.provider = AAM_PROVIDER_TENSORRT;
    CHECK(aam_model_load(dir, &p, &m) == AAM_STATUS_UNAVAILABLE && strstr(aam_last_error(), "TensorRT"), "tensorrt refused");
    p.allow_fallback = 1;
    CHECK(aam_model_load(dir, &p, &m) == AAM_STATUS_OK && strcmp(aam_model_execution_provider(m), "cpu") == 0 && strstr(aam_model_fallback_reason(m), "TensorRT"), "tensorrt with fallback");
    aam_model_free(m);
}

/* The ASV-embedding path (split graphs, the default for an export directory): equal to
 * model.onnx within 1e-5, counts reported. */
static void asv_cache(const char *dir) {
    AamModel *m = NULL, *single = NULL;
    AamParams p = aam_default_params();
    AamAsvCacheStats st;
    CHECK(aam_model_asv_cache_stats(model, &st) == AAM_STATUS_OK && st.capacity == 0 && st.entries == 0,
          "the default load runs the split graphs, embeddings kept within a call");
    p.asv_cache = 3;
    CHECK(aam_model_load(dir, &p, &m) == AAM_STATUS_INVALID_ARGUMENT && !m, "asv_cache 3 refused");
    p.asv_cache = AAM_ASV_SINGLE_GRAPH;
    CHECK(aam_model_load(dir, &p, &single) == AAM_STATUS_OK, "load the single graph");
    if (!single) return;
    CHECK(aam_model_asv_cache_stats(single, &st) == AAM_STATUS_INVALID_ARGUMENT, "no ASV-path counts on the single graph");
    AamModel *keep = model;
    size_t len = 0;
    model = single;
    float *want = predict_copy(model, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width, &len);
    model = keep;
    CHECK(want && len == reference_len && max_abs_diff(want, reference, len) <= 1e-5f,
          "default (split graphs) == model.onnx within 1e-5");
    free(want);
    aam_model_free(single);
    p.asv_cache = AAM_ASV_CACHE;
    p.asv_chunk_rows = 3;
    CHECK(aam_model_load_from_memory((const uint8_t *)"x", 1, &p, &m) == AAM_STATUS_UNSUPPORTED, "asv_cache needs files");
    CHECK(aam_model_load(dir, &p, &m) == AAM_STATUS_OK, "load with asv_cache");
    if (!m) return;
    model = m;
    float *got = predict_copy(model, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width, &len);
    float *again = predict_copy(model, tokens_u8, AAM_DTYPE_U8, batch, n_asv, info.token_width, &len);
    model = keep;
    CHECK(got && len == reference_len && max_abs_diff(got, reference, len) <= 1e-5f, "asv cache == model.onnx within 1e-5");
    CHECK(again && memcmp(got, again, len * sizeof *got) == 0, "second call from the cache is identical");
    CHECK(aam_model_asv_cache_stats(m, &st) == AAM_STATUS_OK, "stats");
    /* 2 non-empty samples x 5 slots, 10 distinct sequences: encoded once, then all hits. */
    CHECK(st.asv_slots == 20 && st.misses == 10 && st.hits == 10 && st.entries == 10 && st.capacity == 100000,
          "stats %llu slots %llu misses %llu hits %zu entries", (unsigned long long)st.asv_slots,
          (unsigned long long)st.misses, (unsigned long long)st.hits, st.entries);
    free(got);
    free(again);
    aam_model_free(m);
}

static void misuse(const char *table) {
    AamModel *m = (AamModel *)0x1;
    AamPredictions *p = (AamPredictions *)0x1;
    AamModelInfo i;
    size_t count;
    const char *s;
    CHECK(aam_model_load(NULL, NULL, &m) == AAM_STATUS_NULL_ARGUMENT && m == NULL, "NULL path");
    CHECK(aam_model_load("/nonexistent/model.onnx", NULL, &m) == AAM_STATUS_MODEL && strstr(aam_last_error(), "aam export"), "missing file");
    CHECK(aam_model_load(table, NULL, &m) == AAM_STATUS_MODEL, "a BIOM file is not a model");
    CHECK(aam_model_load_from_memory((const uint8_t *)"garbage", 7, NULL, &m) == AAM_STATUS_MODEL, "garbage bytes");
    AamParams bad = aam_default_params();
    bad.abi_version = 999;
    CHECK(aam_model_load("x", &bad, &m) == AAM_STATUS_INVALID_ARGUMENT && strstr(aam_last_error(), "ABI"), "abi version");
    bad = aam_default_params();
    bad.backend = 7;
    CHECK(aam_model_load("x", &bad, &m) == AAM_STATUS_INVALID_ARGUMENT, "backend");
    bad = aam_default_params();
    bad.provider = 3;
    CHECK(aam_model_load("x", &bad, &m) == AAM_STATUS_INVALID_ARGUMENT, "provider");
    bad = aam_default_params();
    bad.allow_fallback = 2;
    CHECK(aam_model_load("x", &bad, &m) == AAM_STATUS_INVALID_ARGUMENT, "allow_fallback not 0/1");
    bad = aam_default_params();
    bad.threads = 0;
    CHECK(aam_model_load("x", &bad, &m) == AAM_STATUS_INVALID_ARGUMENT, "zero threads");
    CHECK(aam_model_info(NULL, &i) == AAM_STATUS_INVALID_HANDLE, "NULL model");
    CHECK(aam_model_info((AamModel *)&i, &i) == AAM_STATUS_INVALID_HANDLE, "foreign pointer");
    CHECK(aam_model_info(model, NULL) == AAM_STATUS_NULL_ARGUMENT, "NULL out");
    CHECK(aam_predict_tokens(model, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width - 1, &p) == AAM_STATUS_INVALID_ARGUMENT && p == NULL, "wrong width");
    CHECK(aam_predict_tokens(model, tokens_i64, AAM_DTYPE_I64, batch, info.token_limit + 1, info.token_width, &p) == AAM_STATUS_INVALID_ARGUMENT, "too many ASVs");
    CHECK(aam_predict_tokens(model, tokens_i64, AAM_DTYPE_I64, 0, n_asv, info.token_width, &p) == AAM_STATUS_INVALID_ARGUMENT, "empty batch");
    CHECK(aam_predict_tokens(model, tokens_i64, 42, batch, n_asv, info.token_width, &p) == AAM_STATUS_INVALID_ARGUMENT, "wrong dtype");
    CHECK(aam_predict_tokens(model, NULL, AAM_DTYPE_I64, batch, n_asv, info.token_width, &p) == AAM_STATUS_NULL_ARGUMENT, "NULL tokens");
    int64_t *bad_tokens = calloc(batch * n_asv * info.token_width, sizeof *bad_tokens);
    bad_tokens[0] = 99;
    CHECK(aam_predict_tokens(model, bad_tokens, AAM_DTYPE_I64, batch, n_asv, info.token_width, &p) == AAM_STATUS_INVALID_ARGUMENT && strstr(aam_last_error(), "vocabulary"), "token outside vocabulary");
    free(bad_tokens);
    CHECK(aam_predict_biom(model, "/nonexistent.biom", &p) == AAM_STATUS_IO, "missing table");
    CHECK(aam_predict_tokens((AamModel *)p, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width, &p) == AAM_STATUS_INVALID_HANDLE, "NULL predictions as model");
    /* Predictions: index range, freed handles, double free. */
    CHECK(aam_predict_tokens(model, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width, &p) == AAM_STATUS_OK, "predict");
    CHECK(aam_predictions_sample_id(p, batch, &s) == AAM_STATUS_INVALID_ARGUMENT, "index out of range");
    CHECK(aam_model_info((AamModel *)p, &i) == AAM_STATUS_INVALID_HANDLE, "predictions used as a model");
    aam_predictions_free(p);
    CHECK(aam_predictions_count(p, &count) == AAM_STATUS_INVALID_HANDLE, "freed predictions");
    aam_predictions_free(p); /* double free is ignored */
    aam_predictions_free(NULL);
    aam_model_free(NULL);
    CHECK(aam_model_class_label(model, 99, &s) == AAM_STATUS_INVALID_ARGUMENT, "class index");
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL TABLE ITERATIONS\n", argv[0]);
        return 2;
    }
    iterations = atol(argv[3]);
    CHECK(strcmp(aam_status_name(AAM_STATUS_INVALID_HANDLE), "AAM_STATUS_INVALID_HANDLE") == 0, "status name");
    CHECK(aam_abi_version() == AAM_ABI_VERSION, "abi version");
    AamStatus st = aam_model_load(argv[1], NULL, &model);
    CHECK(st == AAM_STATUS_OK, "load %s", argv[1]);
    if (st != AAM_STATUS_OK) return 1;
    CHECK(aam_model_info(model, &info) == AAM_STATUS_OK, "info");
    CHECK(info.token_width == info.max_bp + 1 && info.is_predictor == 1 && info.is_classifier == 1 && info.n_classes == 2, "info values");
    const char *label = NULL;
    CHECK(aam_model_class_label(model, 0, &label) == AAM_STATUS_OK && strcmp(label, "Air") == 0, "class 0 is Air");
    make_tokens();

    /* From memory gives the same model. */
    FILE *f = NULL;
    char onnx[4096];
    snprintf(onnx, sizeof onnx, "%s/model.onnx", argv[1]);
    f = fopen(onnx, "rb");
    CHECK(f != NULL, "open %s", onnx);
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *bytes = malloc((size_t)n);
        CHECK(fread(bytes, 1, (size_t)n, f) == (size_t)n, "read");
        fclose(f);
        AamModel *m2 = NULL;
        CHECK(aam_model_load_from_memory(bytes, (size_t)n, NULL, &m2) == AAM_STATUS_OK, "load from memory");
        free(bytes);
        /* From memory the single model.onnx runs: identical to the file loaded with
         * AAM_ASV_SINGLE_GRAPH, and within 1e-5 of the default (split graphs). */
        AamParams ps = aam_default_params();
        ps.asv_cache = AAM_ASV_SINGLE_GRAPH;
        AamModel *m3 = NULL;
        CHECK(aam_model_load(argv[1], &ps, &m3) == AAM_STATUS_OK, "load the single graph from the file");
        AamPredictions *a = NULL, *b = NULL, *c = NULL;
        CHECK(aam_predict_tokens(m2, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width, &a) == AAM_STATUS_OK, "predict m2");
        CHECK(aam_predict_tokens(model, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width, &b) == AAM_STATUS_OK, "predict m");
        CHECK(aam_predict_tokens(m3, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width, &c) == AAM_STATUS_OK, "predict m3");
        const float *ea, *eb, *ec;
        size_t da, db, dc;
        aam_predictions_embeddings(a, &ea, &da);
        aam_predictions_embeddings(b, &eb, &db);
        aam_predictions_embeddings(c, &ec, &dc);
        CHECK(da == info.embedding_dim && da == dc && memcmp(ea, ec, batch * da * sizeof(float)) == 0, "memory == file (single graph)");
        CHECK(da == db && max_abs_diff(ea, eb, batch * da) <= 1e-5f, "memory == file (split graphs) within 1e-5");
        aam_predictions_free(a);
        aam_predictions_free(b);
        aam_predictions_free(c);
        aam_model_free(m2);
        aam_model_free(m3);
    }

    reference = predict_copy(model, tokens_i64, AAM_DTYPE_I64, batch, n_asv, info.token_width, &reference_len);
    CHECK(reference != NULL, "reference prediction");
    size_t len_u8 = 0;
    float *from_u8 = predict_copy(model, tokens_u8, AAM_DTYPE_U8, batch, n_asv, info.token_width, &len_u8);
    CHECK(from_u8 && len_u8 == reference_len && memcmp(from_u8, reference, len_u8 * sizeof(float)) == 0, "u8 == i64");
    free(from_u8);
    for (size_t k = 0; k < reference_len; k++) CHECK(reference[k] == reference[k], "NaN at %zu", k);

    misuse(argv[2]);
    backends(argv[1]);
    asv_cache(argv[1]);

    /* BIOM path. */
    AamPredictions *p = NULL;
    CHECK(aam_predict_biom(model, argv[2], &p) == AAM_STATUS_OK, "predict biom");
    size_t count = 0, k = 0;
    const float *probs = NULL;
    aam_predictions_count(p, &count);
    aam_predictions_probabilities(p, &probs, &k);
    CHECK(count == 46 && k == 2, "46 samples, 2 classes");
    for (size_t i = 0; i < count; i++) CHECK(probs[2 * i] + probs[2 * i + 1] > 0.9999f && probs[2 * i] + probs[2 * i + 1] < 1.0001f, "probabilities of %zu", i);
    const char *id = NULL;
    aam_predictions_sample_id(p, 0, &id);
    CHECK(strcmp(id, "11548.132.133.1a") == 0, "first sample id %s", id);
    aam_predictions_free(p);

    /* THREADS threads × iterations predictions equal the single-thread result. */
    pthread_t threads[THREADS];
    long mismatches[THREADS] = {0};
    for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, worker, &mismatches[t]);
    long total = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        total += mismatches[t];
    }
    CHECK(total == 0, "%ld of %d x %ld threaded predictions differ", total, THREADS, iterations);

    free(reference);
    free(tokens_i64);
    free(tokens_u8);
    CHECK(aam_live_handles() == 1, "only the model is live (%zu handles)", aam_live_handles());
    aam_model_free(model);
    CHECK(aam_model_info(model, &info) == AAM_STATUS_INVALID_HANDLE, "freed model");
    CHECK(aam_live_handles() == 0, "every handle freed (%zu live)", aam_live_handles());
    printf("capi: %d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
