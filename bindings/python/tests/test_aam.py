"""Tests of the Python binding on the shipped model (repository paths)."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import aam

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MODEL = os.path.join(REPO, "models", "circadian-exposure")
TABLE = os.path.join(REPO, "data", "circadian-ihc", "table.biom")


def read_tsv(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        return [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f]


@pytest.fixture(scope="module")
def model():
    with aam.Model(MODEL) as m:
        yield m


def test_version():
    assert aam.version() == "0.1.0"
    assert aam.abi_version() == 2


def test_biom_predictions_equal_the_recorded_ones(model):
    assert model.class_labels == ["Air", "IHC"]
    preds = model.predict_biom(TABLE)
    want = read_tsv(os.path.join(MODEL, "predictions.tsv"))
    assert preds.sample_ids == [r["sample_id"] for r in want]
    assert preds.labels == [r["prediction"] for r in want]
    expected = np.array([[float(r["probability_Air"]), float(r["probability_IHC"])] for r in want])
    np.testing.assert_allclose(preds.probabilities, expected, atol=1e-5)
    assert preds.embeddings.shape == (46, 32) and np.isfinite(preds.embeddings).all()
    assert all(n is None for n in preds.notes)


def test_tokens_u8_and_i64_agree_and_threads_agree(model):
    rng = np.random.default_rng(0)
    tokens = np.zeros((4, 9, model.info["token_width"]), np.int64)
    tokens[:3, :, 0] = 5
    tokens[:3, :, 1:40] = rng.integers(1, 5, size=(3, 9, 39))
    a = model.predict_tokens(tokens)
    b = model.predict_tokens(tokens.astype(np.uint8))
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    assert np.isfinite(a.probabilities).all(), "all-padding sample gives finite output"
    with ThreadPoolExecutor(8) as pool:
        for p in pool.map(lambda _: model.predict_tokens(tokens), range(64)):
            np.testing.assert_array_equal(p.probabilities, a.probabilities)


def test_counts_are_accepted_and_ignored_by_a_model_without_count_embedding(model):
    # The shipped model was trained without --count-embedding (the count path of a
    # model with one is tested through the same C entry point in crates/aam-capi/tests).
    assert model.uses_counts is False
    tokens = np.zeros((2, 3, model.info["token_width"]), np.int64)
    tokens[:, :, 0] = 5
    tokens[:, :, 1:30] = 2
    plain = model.predict_tokens(tokens)
    with_counts = model.predict_tokens(tokens, counts=np.full((2, 3), 7.0))
    np.testing.assert_array_equal(plain.embeddings, with_counts.embeddings)
    with pytest.raises(ValueError, match="counts"):
        model.predict_tokens(tokens, counts=np.ones((2, 4)))


def test_a_model_that_reads_counts_predicts_the_table_as_recorded():
    # The k-mer, abundance-pooling model shipped beside the default reads each ASV's
    # read count: from the table here, and required beside raw tokens.
    path = os.path.join(REPO, "models", "circadian-exposure-kmer-abundance")
    with aam.Model(path) as m:
        assert m.uses_counts is True
        preds = m.predict_biom(TABLE)
        want = read_tsv(os.path.join(path, "predictions.tsv"))
        assert preds.labels == [r["prediction"] for r in want]
        expected = np.array([[float(r["probability_Air"]), float(r["probability_IHC"])] for r in want])
        np.testing.assert_allclose(preds.probabilities, expected, atol=1e-5)
        tokens = np.zeros((1, 2, m.info["token_width"]), np.int64)
        tokens[:, :, 0] = 5
        tokens[:, :, 1:30] = 2
        with pytest.raises(aam.AamError, match="counts"):
            m.predict_tokens(tokens)
        few = m.predict_tokens(tokens, counts=np.array([[1.0, 1.0]]))
        many = m.predict_tokens(tokens, counts=np.array([[1.0, 500.0]]))
        assert not np.allclose(few.embeddings, many.embeddings)


def test_errors_are_exceptions(model):
    with pytest.raises(aam.AamError, match="aam export") as e:
        aam.Model("/nonexistent/model.onnx")
    assert e.value.status == "AAM_STATUS_MODEL"
    with pytest.raises(TypeError):
        model.predict_tokens(np.zeros((1, 1, 91), np.float32))
    with pytest.raises(aam.AamError, match="shape"):
        model.predict_tokens(np.zeros((1, 1, 90), np.int64))
    with pytest.raises(aam.AamError) as e:
        model.predict_biom("/nonexistent.biom")
    assert e.value.status == "AAM_STATUS_IO"


@pytest.mark.skipif(
    not aam.has_backend("ort") and not os.environ.get("AAM_REQUIRE_ORT"),
    reason="libaam built without the ort feature",
)
def test_onnx_runtime_backend_equals_tract(model):
    assert os.environ.get("ORT_DYLIB_PATH"), "scripts/test.sh sets ORT_DYLIB_PATH"
    with aam.Model(MODEL, backend="ort") as ort:
        assert ort.execution_provider == "cpu" and ort.fallback_reason is None
        a = model.predict_biom(TABLE)
        b = ort.predict_biom(TABLE)
        np.testing.assert_allclose(b.probabilities, a.probabilities, atol=1e-4)
        np.testing.assert_allclose(b.embeddings, a.embeddings, atol=1e-4)
    with pytest.raises(aam.AamError) as e:
        aam.Model(MODEL, backend="ort", provider="cuda")
    assert e.value.status == "AAM_STATUS_UNAVAILABLE" and "onnxruntime-gpu" in str(e.value)
    with aam.Model(MODEL, backend="ort", provider="cuda", allow_fallback=True) as fb:
        assert fb.execution_provider == "cpu" and "CUDA" in fb.fallback_reason


def test_asv_cache_equals_the_single_graph(model):
    with aam.Model(MODEL, asv_cache=True, asv_cache_capacity=1000) as cached, \
            aam.Model(MODEL, single_graph=True) as single:
        a = single.predict_biom(TABLE)
        b = cached.predict_biom(TABLE)
        np.testing.assert_allclose(b.probabilities, a.probabilities, atol=1e-5)
        np.testing.assert_allclose(b.embeddings, a.embeddings, atol=1e-5)
        stats = cached.asv_cache_stats()
        assert stats["misses"] == 482 and stats["entries"] == 482 and stats["hits"] == 0
        cached.predict_biom(TABLE)
        assert cached.asv_cache_stats()["hits"] == 482
        np.testing.assert_allclose(model.predict_biom(TABLE).probabilities, a.probabilities, atol=1e-5)
        assert model.asv_cache_stats()["capacity"] == 0, "the default: split graphs, within a call"
        with pytest.raises(aam.AamError):
            single.asv_cache_stats()


SHARED = os.path.join(REPO, "..", "shared", "data", "moving-pictures")
QIIME2 = os.path.join(SHARED, "qiime2")


def test_predict_returns_a_dataframe_of_the_recorded_predictions(model):
    df = model.predict(TABLE)
    want = read_tsv(os.path.join(MODEL, "predictions.tsv"))
    assert df.index.name == "sample_id"
    assert list(df.index) == [r["sample_id"] for r in want]
    assert list(df.columns) == ["prediction", "probability_Air", "probability_IHC", "note"]
    assert list(df["prediction"]) == [r["prediction"] for r in want]
    np.testing.assert_allclose(df["probability_IHC"].to_numpy(),
                               [float(r["probability_IHC"]) for r in want], atol=1e-5)


def by_sample(df):
    return df.sort_index()


def test_predict_takes_a_qiime2_artifact_a_dataframe_and_a_biom_table(model):
    want = by_sample(model.predict(os.path.join(SHARED, "table.biom")))
    assert len(want) == 34
    got = model.predict(os.path.join(QIIME2, "table.qza"), sequences=os.path.join(QIIME2, "rep-seqs.qza"))
    assert by_sample(got).equals(want)
    with pytest.raises(aam.AamError, match="--sequences rep-seqs.qza"):
        model.predict(os.path.join(QIIME2, "table.qza"))
    # A DataFrame of samples × sequences: the classic TSV of the same table, transposed.
    import pandas as pd
    counts = pd.read_csv(os.path.join(SHARED, "table.tsv"), sep="\t", skiprows=1, index_col=0).T
    assert counts.shape == (34, 770)
    assert by_sample(model.predict(counts)).equals(want)
    # Hashed feature IDs as columns, mapped by the sequences.
    import hashlib
    hashed = counts.rename(columns=lambda seq: hashlib.md5(seq.encode()).hexdigest())
    got = model.predict(hashed, sequences=os.path.join(QIIME2, "rep-seqs.qza"))
    assert by_sample(got).equals(want)
    # Errors name the table given, not the temporary file; the caller's index comes back.
    with pytest.raises(aam.AamError, match="the table given: the feature IDs are MD5 hashes"):
        model.predict(hashed)
    by_position = model.predict(counts.reset_index(drop=True))
    assert list(by_position.index) == list(range(34))
    with pytest.raises(TypeError, match="biom.Table or a pandas DataFrame"):
        model.predict(counts.to_numpy())
    broken = counts.copy()
    broken.iloc[2, 5] = float("nan")
    with pytest.raises(ValueError, match=f"sample '{counts.index[2]}'.*count nan"):
        model.predict(broken)
    with pytest.raises(ValueError, match="ASV .* appears twice"):
        model.predict(counts.iloc[:, [0, 0, 1]].set_axis(["A", "A", "C"], axis=1))
    biom = pytest.importorskip("biom")
    table = biom.Table(counts.T.to_numpy(), list(counts.columns), list(counts.index))
    assert by_sample(model.predict(table)).equals(want)
