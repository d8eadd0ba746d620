/* Helpers shared by the C test programs (capi_test.c, soak.c). Header-only: each program
 * includes it once. */
#ifndef AAM_TESTS_CAPI_COMMON_H
#define AAM_TESTS_CAPI_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "aam.h"

/* Embeddings [count, dim] then probabilities [count, k] of one aam_predict_tokens call on
 * `tokens` ([batch, n_asv, token_width] of `dtype`), copied into a new float buffer of *len
 * values that the caller frees; NULL when the call fails (or the copy cannot be allocated). */
static inline float *predict_copy(AamModel *model, const void *tokens, uint32_t dtype, size_t batch,
                                  size_t n_asv, size_t token_width, size_t *len) {
    AamPredictions *p = NULL;
    if (aam_predict_tokens(model, tokens, dtype, batch, n_asv, token_width, &p) != AAM_STATUS_OK) return NULL;
    const float *emb = NULL, *probs = NULL;
    size_t dim = 0, k = 0, count = 0;
    aam_predictions_count(p, &count);
    aam_predictions_embeddings(p, &emb, &dim);
    aam_predictions_probabilities(p, &probs, &k);
    *len = count * (dim + k);
    float *out = malloc((*len ? *len : 1) * sizeof *out);
    if (out) {
        memcpy(out, emb, count * dim * sizeof *out);
        if (k) memcpy(out + count * dim, probs, count * k * sizeof *out);
    }
    aam_predictions_free(p);
    return out;
}

#endif
