"""Attention All Microbes from Python, over the aam C ABI (``libaam.so``).

The shared library is found through ``AAM_LIBRARY`` (a path to ``libaam.so``), else the
system's library search path. Build it with ``cargo build -p aam-capi``.

    import aam
    model = aam.Model("models/circadian-exposure")
    preds = model.predict_biom("data/circadian-ihc/table.biom")
    preds.sample_ids, preds.labels, preds.probabilities  # numpy [n, n_classes]

A Model may be used from many threads at once. ONNX Runtime (``backend="ort"``, CPU,
CUDA or TensorRT) is there when the library was built with the ``ort`` feature
(``aam.has_backend("ort")``).
"""

from ._library import AamError, abi_version, has_backend, version
from .model import Model, Predictions

__all__ = ["AamError", "Model", "Predictions", "abi_version", "has_backend", "version"]
