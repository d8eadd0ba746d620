"""Attention All Microbes from Python, over the aam C ABI (``libaam.so``).

The wheel (``bash scripts/build-wheel.sh target/release/libaam.so dist/``) carries
``libaam.so``; ``AAM_LIBRARY`` (a path to ``libaam.so``) overrides it, and a source install
without it looks on the system's library search path (:func:`library_path`).

    import aam
    model = aam.Model("models/circadian-exposure")
    model.predict("data/circadian-ihc/table.biom")  # a pandas DataFrame, a row per sample
    model.predict("table.qza", sequences="rep-seqs.qza")  # QIIME 2 artifacts
    model.predict(counts)  # a DataFrame of samples × ASV sequences, or a biom.Table
    preds = model.predict_biom("data/circadian-ihc/table.biom")
    preds.sample_ids, preds.labels, preds.probabilities  # numpy [n, n_classes]

A Model may be used from many threads at once. ONNX Runtime (``backend="ort"``, CPU,
CUDA or TensorRT) is there when the library was built with the ``ort`` feature
(``aam.has_backend("ort")``).

Training, evaluation and interpretation run the ``aam`` executable (module ``aam.cli``):
``aam.pretrain``, ``aam.train``, ``aam.export``, ``aam.evaluate``, ``aam.importance``,
``aam.attention`` and ``aam.tune`` take its options as keyword arguments and return the
output directory; ``aam.read_metrics`` and ``aam.read_study`` read a run's epochs and a
study's trials.
"""

from ._library import AamError, abi_version, has_backend, library_path, version
from .cli import (CommandError, attention, evaluate, export, importance, pretrain, read_metrics,
                  read_study, train, tune)
from .model import Model, Predictions

__all__ = ["AamError", "CommandError", "Model", "Predictions", "abi_version", "attention",
           "evaluate", "export", "has_backend", "importance", "library_path", "pretrain", "read_metrics",
           "read_study", "train", "tune", "version"]
