/* Predict every sample of a feature table with an exported aam model, from C.
 *
 *   cc -Wall -Werror -I include bindings/c/example.c -L target/debug -laam -o aam_example
 *   LD_LIBRARY_PATH=target/debug ./aam_example models/circadian-exposure data/circadian-ihc/table.biom
 */
#include <stdio.h>

#include "aam.h"

static int fail(const char *what, AamStatus status) {
    fprintf(stderr, "%s: %s: %s\n", what, aam_status_name(status), aam_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR_OR_ONNX TABLE.biom\n", argv[0]);
        return 2;
    }
    printf("aam %s (ABI %u)\n", aam_version(), aam_abi_version());
    AamParams params = aam_default_params();
    AamModel *model = NULL;
    AamStatus st = aam_model_load(argv[1], &params, &model);
    if (st != AAM_STATUS_OK) return fail("load", st);
    AamModelInfo info;
    aam_model_info(model, &info);

    AamPredictions *preds = NULL;
    st = aam_predict_biom(model, argv[2], &preds);
    if (st != AAM_STATUS_OK) {
        aam_model_free(model);
        return fail("predict", st);
    }
    size_t count = 0, n_classes = 0;
    const float *probs = NULL;
    const double *values = NULL;
    const uint8_t *has_value = NULL;
    aam_predictions_count(preds, &count);
    aam_predictions_probabilities(preds, &probs, &n_classes);
    aam_predictions_values(preds, &values, &has_value);
    for (size_t i = 0; i < count; i++) {
        const char *id = NULL, *label = NULL, *note = NULL;
        aam_predictions_sample_id(preds, i, &id);
        aam_predictions_label(preds, i, &label);
        aam_predictions_note(preds, i, &note);
        printf("%s", id);
        if (note) {
            printf("\t(no prediction: %s)\n", note);
            continue;
        }
        if (label) printf("\t%s", label);
        if (values && has_value[i]) printf("\t%g", values[i]);
        for (size_t c = 0; probs && c < n_classes; c++) printf("\t%.4f", probs[i * n_classes + c]);
        printf("\n");
    }
    aam_predictions_free(preds);
    aam_model_free(model);
    return 0;
}
