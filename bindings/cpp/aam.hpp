// aam C++ binding: RAII classes and exceptions over the C ABI (include/aam.h).
//
//   aam::Model model("models/circadian-exposure");
//   aam::Predictions p = model.predict_biom("data/circadian-ihc/table.biom");
//   for (size_t i = 0; i < p.size(); ++i) std::cout << p.sample_id(i) << ' ' << p.label(i) << '\n';
//
// A Model may be used from many threads at once; Predictions are read-only.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "aam.h"

namespace aam {

/// A failed call: the status code and the library's message.
class Error : public std::runtime_error {
public:
    Error(AamStatus status, const std::string &what)
        : std::runtime_error(what + ": " + aam_last_error()), status_(status) {}
    AamStatus status() const noexcept { return status_; }

private:
    AamStatus status_;
};

inline void check(AamStatus status, const char *what) {
    if (status != AAM_STATUS_OK) throw Error(status, std::string(what) + " (" + aam_status_name(status) + ")");
}

/// Predictions for a batch of samples (owns the C handle).
class Predictions {
public:
    explicit Predictions(AamPredictions *p) : p_(p, &aam_predictions_free) {}

    size_t size() const {
        size_t n = 0;
        check(aam_predictions_count(p_.get(), &n), "aam_predictions_count");
        return n;
    }
    /// Embedding of sample `i` (D floats).
    std::vector<float> embedding(size_t i) const {
        const float *v = nullptr;
        size_t d = 0;
        check(aam_predictions_embeddings(p_.get(), &v, &d), "aam_predictions_embeddings");
        return std::vector<float>(v + i * d, v + (i + 1) * d);
    }
    /// Class probabilities of sample `i` (empty for non-classifiers).
    std::vector<float> probabilities(size_t i) const {
        const float *v = nullptr;
        size_t k = 0;
        check(aam_predictions_probabilities(p_.get(), &v, &k), "aam_predictions_probabilities");
        return v ? std::vector<float>(v + i * k, v + (i + 1) * k) : std::vector<float>();
    }
    /// Regression prediction of sample `i` in original units; false when there is none.
    bool value(size_t i, double &out) const {
        const double *v = nullptr;
        const uint8_t *has = nullptr;
        check(aam_predictions_values(p_.get(), &v, &has), "aam_predictions_values");
        if (!v || !has[i]) return false;
        out = v[i];
        return true;
    }
    std::string sample_id(size_t i) const { return str(aam_predictions_sample_id, i); }
    /// Predicted class label ("" for non-classifiers and samples without a prediction).
    std::string label(size_t i) const { return str(aam_predictions_label, i); }
    /// Why sample `i` has no prediction ("" when it has one).
    std::string note(size_t i) const { return str(aam_predictions_note, i); }

private:
    using Getter = AamStatus (*)(const AamPredictions *, size_t, const char **);
    std::string str(Getter get, size_t i) const {
        const char *s = nullptr;
        check(get(p_.get(), i, &s), "aam_predictions string");
        return s ? std::string(s) : std::string();
    }
    std::unique_ptr<AamPredictions, void (*)(AamPredictions *)> p_;
};

/// A loaded model (owns the C handle). Thread-safe for prediction.
class Model {
public:
    explicit Model(const std::string &path, AamParams params = aam_default_params())
        : m_(load(path, params), &aam_model_free) {}

    AamModelInfo info() const {
        AamModelInfo i;
        check(aam_model_info(m_.get(), &i), "aam_model_info");
        return i;
    }
    std::vector<std::string> class_labels() const {
        std::vector<std::string> out;
        for (size_t k = 0; k < info().n_classes; ++k) {
            const char *s = nullptr;
            check(aam_model_class_label(m_.get(), k, &s), "aam_model_class_label");
            out.emplace_back(s);
        }
        return out;
    }
    /// Tokens int64 [batch, n_asv, token_width], row-major.
    Predictions predict_tokens(const std::vector<int64_t> &tokens, size_t batch, size_t n_asv) const {
        size_t w = info().token_width;
        if (tokens.size() != batch * n_asv * w)
            throw std::invalid_argument("tokens.size() is not batch * n_asv * token_width");
        AamPredictions *p = nullptr;
        check(aam_predict_tokens(m_.get(), tokens.data(), AAM_DTYPE_I64, batch, n_asv, w, &p), "aam_predict_tokens");
        return Predictions(p);
    }
    /// The execution provider the model runs on: "cpu", "cuda" or "tensorrt".
    std::string execution_provider() const { return aam_model_execution_provider(m_.get()); }
    /// Why the requested provider was not used (empty when it was).
    std::string fallback_reason() const {
        const char *s = aam_model_fallback_reason(m_.get());
        return s ? std::string(s) : std::string();
    }
    Predictions predict_biom(const std::string &table) const {
        AamPredictions *p = nullptr;
        check(aam_predict_biom(m_.get(), table.c_str(), &p), "aam_predict_biom");
        return Predictions(p);
    }
    /// `predict_biom` with a metadata TSV giving each sample's values of the metadata
    /// categories a model is conditioned on (`aam train --categorical-columns`).
    Predictions predict_biom(const std::string &table, const std::string &metadata) const {
        AamPredictions *p = nullptr;
        check(aam_predict_biom_metadata(m_.get(), table.c_str(), metadata.c_str(), &p),
              "aam_predict_biom_metadata");
        return Predictions(p);
    }
    /// Predicts a feature table whose feature IDs are not sequences (a QIIME 2 `table.qza`
    /// with DADA2 MD5 IDs) with their `sequences` (`rep-seqs.qza` or FASTA); `metadata`
    /// as above, or empty for none.
    Predictions predict_table(const std::string &table, const std::string &sequences,
                              const std::string &metadata = std::string()) const {
        AamPredictions *p = nullptr;
        check(aam_predict_table(m_.get(), table.c_str(), sequences.c_str(),
                                metadata.empty() ? nullptr : metadata.c_str(), &p),
              "aam_predict_table");
        return Predictions(p);
    }

private:
    static AamModel *load(const std::string &path, const AamParams &params) {
        AamModel *m = nullptr;
        check(aam_model_load(path.c_str(), &params, &m), "aam_model_load");
        return m;
    }
    std::unique_ptr<AamModel, void (*)(AamModel *)> m_;
};

}  // namespace aam
