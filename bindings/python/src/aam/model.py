"""Model and Predictions: numpy in, numpy out."""

import ctypes
import os
import tempfile

import numpy as np

from ._library import (ASV_SINGLE_GRAPH, BACKENDS, DTYPE_I64, DTYPE_U8, PROVIDERS, AamError,
                       AsvCacheStats, ModelInfo, check, lib)


class Predictions:
    """Predictions for a batch (copied into numpy arrays; the C handle is freed at once).

    Attributes: ``sample_ids`` (list of str), ``embeddings`` float32 ``[n, D]``,
    ``probabilities`` float32 ``[n, n_classes]`` or None, ``labels`` (list, None where a
    sample has no prediction) or None, ``values`` float64 ``[n]`` (original units; NaN-free:
    see ``has_value``) or None, ``has_value`` bool ``[n]``, ``notes`` (list of str or None);
    quantile regressors: ``quantile_levels`` float64 ``[k]`` and ``quantiles`` float64
    ``[n, k]`` (original units; ``values`` is the middle level), else None; regressors of
    several metadata columns: ``target_columns`` (list of str) and ``targets`` float64
    ``[n, n_targets]`` (each column in its units; ``values`` is the first), else None;
    ``class_labels``: the model's classes (classifiers), else None.
    """

    def __init__(self, handle, class_labels=None):
        self.class_labels = class_labels
        try:
            n = ctypes.c_size_t()
            check(lib.aam_predictions_count(handle, ctypes.byref(n)))
            n = n.value
            ptr, d = ctypes.POINTER(ctypes.c_float)(), ctypes.c_size_t()
            check(lib.aam_predictions_embeddings(handle, ctypes.byref(ptr), ctypes.byref(d)))
            self.embeddings = np.ctypeslib.as_array(ptr, shape=(n, d.value)).copy() if n * d.value else np.zeros((n, d.value), np.float32)
            ptr, k = ctypes.POINTER(ctypes.c_float)(), ctypes.c_size_t()
            check(lib.aam_predictions_probabilities(handle, ctypes.byref(ptr), ctypes.byref(k)))
            self.probabilities = np.ctypeslib.as_array(ptr, shape=(n, k.value)).copy() if k.value else None
            vals, has = ctypes.POINTER(ctypes.c_double)(), ctypes.POINTER(ctypes.c_uint8)()
            check(lib.aam_predictions_values(handle, ctypes.byref(vals), ctypes.byref(has)))
            if vals:
                self.values = np.ctypeslib.as_array(vals, shape=(n,)).copy()
                self.has_value = np.ctypeslib.as_array(has, shape=(n,)).astype(bool)
            else:
                self.values = None
                self.has_value = np.zeros(n, bool)
            levels, qvals, k = ctypes.POINTER(ctypes.c_double)(), ctypes.POINTER(ctypes.c_double)(), ctypes.c_size_t()
            check(lib.aam_predictions_quantiles(handle, ctypes.byref(levels), ctypes.byref(qvals), ctypes.byref(k)))
            if k.value:
                self.quantile_levels = np.ctypeslib.as_array(levels, shape=(k.value,)).copy()
                self.quantiles = np.ctypeslib.as_array(qvals, shape=(n, k.value)).copy() if n else np.zeros((0, k.value))
            else:
                self.quantile_levels = self.quantiles = None
            tvals, k = ctypes.POINTER(ctypes.c_double)(), ctypes.c_size_t()
            check(lib.aam_predictions_targets(handle, ctypes.byref(tvals), ctypes.byref(k)))
            if k.value:
                self.target_columns = [self._string(lib.aam_predictions_target_name, handle, j) for j in range(k.value)]
                self.targets = np.ctypeslib.as_array(tvals, shape=(n, k.value)).copy() if n else np.zeros((0, k.value))
            else:
                self.target_columns = self.targets = None
            self.sample_ids = [self._string(lib.aam_predictions_sample_id, handle, i) for i in range(n)]
            labels = [self._string(lib.aam_predictions_label, handle, i) for i in range(n)]
            self.labels = labels if self.probabilities is not None else None
            if self.labels is not None:
                self.has_value = np.array([lab is not None for lab in labels])
            self.notes = [self._string(lib.aam_predictions_note, handle, i) for i in range(n)]
        finally:
            lib.aam_predictions_free(handle)

    @staticmethod
    def _string(getter, handle, i):
        s = ctypes.c_char_p()
        check(getter(handle, i, ctypes.byref(s)))
        return s.value.decode() if s.value is not None else None

    def __len__(self):
        return len(self.sample_ids)

    def to_dataframe(self):
        """These predictions as a pandas DataFrame, one row per sample (index
        ``sample_id``), with the columns of ``aam predict``'s TSV: ``prediction`` (the class
        label, or the value in original units; missing where a sample has none),
        ``probability_<class>`` for classifiers, ``quantile_<level>`` for quantile
        regressors, one column per target for regressors of several metadata columns, and
        ``note``."""
        import pandas as pd

        columns = {}
        if self.labels is not None:
            columns["prediction"] = self.labels
            for j, label in enumerate(self.class_labels or []):
                columns[f"probability_{label}"] = self.probabilities[:, j]
        elif self.values is not None:
            columns["prediction"] = np.where(self.has_value, self.values, np.nan)
        if self.quantiles is not None:
            for j, level in enumerate(self.quantile_levels):
                columns[f"quantile_{level:g}"] = self.quantiles[:, j]
        if self.targets is not None:
            for j, name in enumerate(self.target_columns):
                columns[name] = self.targets[:, j]
        columns["note"] = self.notes
        return pd.DataFrame(columns, index=pd.Index(self.sample_ids, name="sample_id"))


class Model:
    """An exported aam model (``model.onnx`` or its directory), run by the aam library. An
    ensemble directory (``ensemble.json`` from ``aam export`` of several checkpoints) loads as
    one model that runs every member and averages them.

    ``backend``: ``"tract"`` (pure Rust, CPU) or ``"ort"`` (ONNX Runtime; the library from
    ``ort_library`` or ``ORT_DYLIB_PATH``). ``provider``: ``"cpu"``, ``"cuda"`` or
    ``"tensorrt"``; an unavailable provider raises ``AamError`` (``AAM_STATUS_UNAVAILABLE``)
    unless ``allow_fallback``, which runs on the CPU and sets ``fallback_reason``.
    An export directory runs its ``asv_encoder.onnx`` + ``sample_model.onnx``, encoding each
    unique ASV of a call once, in chunks, skipping empty slots (counts in
    ``asv_cache_stats()``); ``asv_cache=True`` also keeps up to ``asv_cache_capacity``
    embeddings across calls; ``single_graph=True`` runs ``model.onnx`` instead.
    """

    def __init__(self, path, threads=1, batch_size=16, backend="tract", provider="cpu",
                 allow_fallback=False, ort_library=None, asv_cache=False, asv_cache_capacity=100_000,
                 single_graph=False):
        if asv_cache and single_graph:
            raise ValueError("asv_cache runs the split graphs; it cannot be combined with single_graph")
        if backend not in BACKENDS or provider not in PROVIDERS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, provider one of {list(PROVIDERS)}")
        params = lib.aam_default_params()
        params.threads = threads
        params.batch_size = batch_size
        params.backend = BACKENDS[backend]
        params.provider = PROVIDERS[provider]
        params.allow_fallback = int(bool(allow_fallback))
        params.asv_cache = ASV_SINGLE_GRAPH if single_graph else int(bool(asv_cache))
        params.asv_cache_capacity = asv_cache_capacity
        if ort_library is not None:
            params.ort_library = os.fsencode(ort_library)
        self._handle = ctypes.c_void_p()
        check(lib.aam_model_load(os.fsencode(path), ctypes.byref(params), ctypes.byref(self._handle)))
        info = ModelInfo()
        check(lib.aam_model_info(self._handle, ctypes.byref(info)))
        self.info = {f: getattr(info, f) for f, _ in ModelInfo._fields_}
        labels = []
        for k in range(info.n_classes):
            s = ctypes.c_char_p()
            check(lib.aam_model_class_label(self._handle, k, ctypes.byref(s)))
            labels.append(s.value.decode())
        self.class_labels = labels
        self.execution_provider = lib.aam_model_execution_provider(self._handle).decode()
        reason = lib.aam_model_fallback_reason(self._handle)
        self.fallback_reason = reason.decode() if reason is not None else None
        uses = ctypes.c_uint8()
        check(lib.aam_model_uses_counts(self._handle, ctypes.byref(uses)))
        # True for a model that reads counts (a count embedding or abundance-weighted pooling): predict_tokens then needs counts.
        self.uses_counts = bool(uses.value)
        n = ctypes.c_size_t()
        check(lib.aam_model_categorical_column_count(self._handle, ctypes.byref(n)))
        columns = []
        for k in range(n.value):
            s = ctypes.c_char_p()
            check(lib.aam_model_categorical_column(self._handle, k, ctypes.byref(s)))
            columns.append(s.value.decode())
        # The metadata columns a conditioned model reads (empty for other models).
        self.categorical_columns = columns

    def asv_cache_stats(self):
        """Counts of the ASV-embedding path (a dict); not for ``single_graph`` models."""
        s = AsvCacheStats()
        check(lib.aam_model_asv_cache_stats(self._handle, ctypes.byref(s)))
        return {f: getattr(s, f) for f, _ in AsvCacheStats._fields_}

    def predict_tokens(self, tokens, counts=None, categories=None):
        """Predicts tokens ``[batch, n_asv, token_width]`` (uint8 or int64 numpy array).

        ``counts``: each ASV slot's read count, ``[batch, n_asv]`` (float32, finite, >= 0),
        needed by a model that reads counts (``uses_counts``: a count embedding or abundance-weighted pooling).
        ``categories``: for a model conditioned on metadata categories
        (``categorical_columns``), each sample's labels as a list of dicts
        (``[{"site": "gut"}, ...]``; a missing or unseen label is the unknown category)."""
        tokens = np.asarray(tokens)
        if tokens.dtype == np.uint8:
            dtype = DTYPE_U8
        elif tokens.dtype == np.int64:
            dtype = DTYPE_I64
        else:
            raise TypeError(f"tokens must be uint8 or int64, not {tokens.dtype}")
        if tokens.ndim != 3:
            raise ValueError(f"tokens must be [batch, n_asv, token_width], got shape {tokens.shape}")
        tokens = np.ascontiguousarray(tokens)
        out = ctypes.c_void_p()
        if counts is not None:
            counts = np.ascontiguousarray(counts, dtype=np.float32)
            if counts.shape != tokens.shape[:2]:
                raise ValueError(f"counts must be [batch, n_asv] = {tokens.shape[:2]}, got shape {counts.shape}")
        if categories is not None:
            if len(categories) != tokens.shape[0]:
                raise ValueError(f"categories must hold one dict per sample ({tokens.shape[0]}), got {len(categories)}")
            ids = np.array([[self.category_index(c, sample.get(c)) for c in self.categorical_columns]
                            for sample in categories], dtype=np.int64).reshape(tokens.shape[0], -1)
            cptr = None if counts is None else counts.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            check(lib.aam_predict_tokens_categories(
                self._handle, tokens.ctypes.data, dtype, *tokens.shape, cptr,
                ids.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), ids.shape[1], ctypes.byref(out)))
            return Predictions(out, self.class_labels)
        if counts is None:
            check(lib.aam_predict_tokens(self._handle, tokens.ctypes.data, dtype, *tokens.shape, ctypes.byref(out)))
            return Predictions(out, self.class_labels)
        check(lib.aam_predict_tokens_counts(
            self._handle, tokens.ctypes.data, dtype, *tokens.shape,
            counts.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), ctypes.byref(out)))
        return Predictions(out, self.class_labels)

    def category_index(self, column, label):
        """The index training gave ``label`` in categorical column ``column`` (0: unknown,
        also for ``None``)."""
        if label is None:
            return 0
        k = ctypes.c_int64()
        check(lib.aam_model_category_index(self._handle, column.encode(), str(label).encode(), ctypes.byref(k)))
        return k.value

    def predict_biom(self, table_path, metadata=None, sequences=None):
        """Predicts every sample of a feature table file (BIOM / TSV with sequence IDs, or
        a QIIME 2 ``FeatureTable[Frequency]`` ``.qza``).

        ``metadata``: a metadata TSV path giving each sample's values of the columns a
        model conditioned on metadata categories reads (``aam train
        --categorical-columns``); needed by such a model, not read by others. A missing
        value, or one the training samples never had, is the unknown category.
        ``sequences``: a ``rep-seqs.qza`` or FASTA path giving the sequences of feature
        IDs that are not sequences (QIIME 2's DADA2 MD5 hashes).
        """
        out = ctypes.c_void_p()
        meta = None if metadata is None else os.fsencode(metadata)
        seqs = None if sequences is None else os.fsencode(sequences)
        check(lib.aam_predict_table(self._handle, os.fsencode(table_path), seqs, meta, ctypes.byref(out)))
        return Predictions(out, self.class_labels)

    def predict(self, table, sequences=None, metadata=None):
        """Predicts every sample of ``table`` and returns a pandas DataFrame, one row per
        sample (see :meth:`Predictions.to_dataframe`).

        ``table``: a feature table file path (BIOM 2.1 / 1.0, classic TSV, or a QIIME 2
        ``FeatureTable[Frequency]`` ``.qza``), a ``biom.Table`` (observations × samples),
        or a pandas DataFrame of counts with one row per sample and one column per ASV
        (the sequence, or a feature ID that ``sequences`` maps to one). ``sequences`` and
        ``metadata`` as in :meth:`predict_biom`.
        """
        return self.predict_table(table, sequences=sequences, metadata=metadata).to_dataframe()

    def predict_table(self, table, sequences=None, metadata=None):
        """:meth:`predict` returning the :class:`Predictions` (numpy arrays) instead."""
        if isinstance(table, (str, bytes, os.PathLike)):
            return self.predict_biom(table, metadata=metadata, sequences=sequences)
        frame = _samples_by_asv(table)
        with tempfile.TemporaryDirectory(prefix="aam-") as tmp:
            path = os.path.join(tmp, "table.tsv")
            _write_classic_tsv(frame, path)
            try:
                preds = self.predict_biom(path, metadata=metadata, sequences=sequences)
            except AamError as e:
                # The temporary file means nothing to the caller: name what they gave.
                raise AamError(e.status, str(e).split(": ", 1)[-1].replace(path, "the table given")) from None
        # The caller's own sample IDs (ints, …) rather than their text, in the same order.
        if preds.sample_ids == [str(s) for s in frame.index]:
            preds.sample_ids = list(frame.index)
        return preds

    def close(self):
        """Frees the model (also done when it is garbage-collected)."""
        if getattr(self, "_handle", None):
            lib.aam_model_free(self._handle)
            self._handle = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _samples_by_asv(table):
    """A pandas DataFrame of counts, samples × ASVs, from a ``biom.Table`` or a DataFrame."""
    import pandas as pd

    if hasattr(table, "to_dataframe") and hasattr(table, "ids"):  # a biom.Table
        return table.to_dataframe(dense=True).T
    if isinstance(table, pd.DataFrame):
        return table
    raise TypeError("table must be a file path, a biom.Table or a pandas DataFrame "
                    f"(samples × ASVs), not {type(table).__name__}")


def _write_classic_tsv(frame, path):
    """Writes ``frame`` (samples × ASVs) as a classic BIOM TSV (ASVs × samples), which
    libaam reads; IDs holding a tab or a line break are refused."""
    for name in list(frame.index) + list(frame.columns):
        if any(c in str(name) for c in "\t\r\n"):
            raise ValueError(f"ID {str(name)!r} holds a tab or a line break")
    for axis, names in (("sample", frame.index), ("ASV", frame.columns)):
        seen = set()
        for name in map(str, names):
            if name in seen:
                raise ValueError(f"{axis} {name!r} appears twice; merge its counts first")
            seen.add(name)
    counts = frame.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(counts) | (counts < 0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"sample {str(frame.index[i])!r}, ASV {str(frame.columns[j])[:32]!r}: "
                         f"count {counts[i, j]} is not a finite non-negative number")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("#OTU ID\t" + "\t".join(str(s) for s in frame.index) + "\n")
        for j, asv in enumerate(frame.columns):
            f.write(str(asv) + "\t" + "\t".join(repr(float(v)) for v in counts[:, j]) + "\n")
