"""Loading libaam and declaring the C signatures of include/aam.h."""

import ctypes
import ctypes.util
import os

ABI_VERSION = 2
BACKENDS = {"tract": 0, "ort": 1}
PROVIDERS = {"cpu": 0, "cuda": 1, "tensorrt": 2}
DTYPE_U8 = 0
ASV_SINGLE_GRAPH = 2  # AamParams.asv_cache: AAM_ASV_SINGLE_GRAPH
DTYPE_I64 = 1


class Params(ctypes.Structure):
    _fields_ = [
        ("abi_version", ctypes.c_uint32),
        ("backend", ctypes.c_uint32),
        ("provider", ctypes.c_uint32),
        ("threads", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
        ("allow_fallback", ctypes.c_uint32),
        ("ort_threads", ctypes.c_uint32),
        ("ort_library", ctypes.c_char_p),
        ("tensorrt_engine_cache", ctypes.c_char_p),
        ("tensorrt_fp16", ctypes.c_uint32),
        ("tensorrt_max_batch", ctypes.c_uint32),
        ("asv_cache", ctypes.c_uint32),
        ("asv_cache_capacity", ctypes.c_uint32),
        ("asv_chunk_rows", ctypes.c_uint32),
    ]


class AsvCacheStats(ctypes.Structure):
    _fields_ = [
        ("asv_slots", ctypes.c_uint64),
        ("hits", ctypes.c_uint64),
        ("misses", ctypes.c_uint64),
        ("entries", ctypes.c_size_t),
        ("capacity", ctypes.c_size_t),
    ]


class ModelInfo(ctypes.Structure):
    _fields_ = [
        ("max_bp", ctypes.c_size_t),
        ("token_width", ctypes.c_size_t),
        ("token_limit", ctypes.c_size_t),
        ("vocab_size", ctypes.c_size_t),
        ("embedding_dim", ctypes.c_size_t),
        ("n_classes", ctypes.c_size_t),
        ("is_predictor", ctypes.c_uint8),
        ("is_classifier", ctypes.c_uint8),
    ]


class AamError(RuntimeError):
    """A failed aam call: ``status`` is the C status name, the message says what and why."""

    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status


def library_path():
    """The libaam to load: ``AAM_LIBRARY`` when set, else the one the wheel carries beside
    this file, else one on the system's library path; None when there is none."""
    if os.environ.get("AAM_LIBRARY"):
        return os.environ["AAM_LIBRARY"]
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libaam.so")
    if os.path.exists(bundled):
        return bundled
    return ctypes.util.find_library("aam")


def _load():
    path = library_path()
    if not path:
        raise OSError("libaam not found: install the aam wheel (scripts/build-wheel.sh), or set "
                      "AAM_LIBRARY to the path of libaam.so (cargo build -p aam-capi)")
    lib = ctypes.CDLL(path)
    p = ctypes.c_void_p
    sz = ctypes.c_size_t
    pp = ctypes.POINTER(ctypes.c_void_p)
    sigs = {
        "aam_version": ([], ctypes.c_char_p),
        "aam_abi_version": ([], ctypes.c_uint32),
        "aam_last_error": ([], ctypes.c_char_p),
        "aam_status_name": ([ctypes.c_int32], ctypes.c_char_p),
        "aam_default_params": ([], Params),
        "aam_model_load": ([ctypes.c_char_p, ctypes.POINTER(Params), pp], ctypes.c_int),
        "aam_model_load_from_memory": ([ctypes.c_char_p, sz, ctypes.POINTER(Params), pp], ctypes.c_int),
        "aam_model_free": ([p], None),
        "aam_has_backend": ([ctypes.c_uint32], ctypes.c_uint32),
        "aam_model_execution_provider": ([p], ctypes.c_char_p),
        "aam_model_fallback_reason": ([p], ctypes.c_char_p),
        "aam_model_asv_cache_stats": ([p, ctypes.POINTER(AsvCacheStats)], ctypes.c_int),
        "aam_model_info": ([p, ctypes.POINTER(ModelInfo)], ctypes.c_int),
        "aam_model_class_label": ([p, sz, ctypes.POINTER(ctypes.c_char_p)], ctypes.c_int),
        "aam_predict_tokens": ([p, p, ctypes.c_uint32, sz, sz, sz, pp], ctypes.c_int),
        "aam_predict_tokens_counts": ([p, p, ctypes.c_uint32, sz, sz, sz, ctypes.POINTER(ctypes.c_float), pp], ctypes.c_int),
        "aam_model_uses_counts": ([p, ctypes.POINTER(ctypes.c_uint8)], ctypes.c_int),
        "aam_model_categorical_column_count": ([p, ctypes.POINTER(sz)], ctypes.c_int),
        "aam_model_categorical_column": ([p, sz, ctypes.POINTER(ctypes.c_char_p)], ctypes.c_int),
        "aam_model_category_index": ([p, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64)], ctypes.c_int),
        "aam_predict_tokens_categories": ([p, p, ctypes.c_uint32, sz, sz, sz, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int64), sz, pp], ctypes.c_int),
        "aam_predict_biom": ([p, ctypes.c_char_p, pp], ctypes.c_int),
        "aam_predict_biom_metadata": ([p, ctypes.c_char_p, ctypes.c_char_p, pp], ctypes.c_int),
        "aam_predict_table": ([p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, pp], ctypes.c_int),
        "aam_predictions_free": ([p], None),
        "aam_predictions_count": ([p, ctypes.POINTER(sz)], ctypes.c_int),
        "aam_predictions_quantiles": ([p, ctypes.POINTER(ctypes.POINTER(ctypes.c_double)), ctypes.POINTER(ctypes.POINTER(ctypes.c_double)), ctypes.POINTER(sz)], ctypes.c_int),
        "aam_predictions_targets": ([p, ctypes.POINTER(ctypes.POINTER(ctypes.c_double)), ctypes.POINTER(sz)], ctypes.c_int),
        "aam_predictions_target_name": ([p, sz, ctypes.POINTER(ctypes.c_char_p)], ctypes.c_int),
        "aam_predictions_embeddings": ([p, ctypes.POINTER(ctypes.POINTER(ctypes.c_float)), ctypes.POINTER(sz)], ctypes.c_int),
        "aam_predictions_probabilities": ([p, ctypes.POINTER(ctypes.POINTER(ctypes.c_float)), ctypes.POINTER(sz)], ctypes.c_int),
        "aam_predictions_values": ([p, ctypes.POINTER(ctypes.POINTER(ctypes.c_double)), ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8))], ctypes.c_int),
        "aam_predictions_sample_id": ([p, sz, ctypes.POINTER(ctypes.c_char_p)], ctypes.c_int),
        "aam_predictions_label": ([p, sz, ctypes.POINTER(ctypes.c_char_p)], ctypes.c_int),
        "aam_predictions_note": ([p, sz, ctypes.POINTER(ctypes.c_char_p)], ctypes.c_int),
    }
    for name, (args, res) in sigs.items():
        try:
            f = getattr(lib, name)
        except AttributeError:
            raise OSError(f"{path} has no {name}: it is older than this package; rebuild it "
                          "(cargo build -p aam-capi) or install the matching aam wheel") from None
        f.argtypes = args
        f.restype = res
    if lib.aam_abi_version() != ABI_VERSION:
        raise OSError(f"{path} has ABI {lib.aam_abi_version()}, this package needs {ABI_VERSION}")
    return lib


lib = _load()


def check(status):
    """Raises AamError for a non-zero status."""
    if status != 0:
        raise AamError(lib.aam_status_name(status).decode(), lib.aam_last_error().decode())


def version():
    """The library version."""
    return lib.aam_version().decode()


def abi_version():
    """The library's ABI version."""
    return lib.aam_abi_version()


def has_backend(name):
    """Whether the library was built with backend ``name`` (``"tract"`` or ``"ort"``)."""
    return bool(lib.aam_has_backend(BACKENDS[name]))
