"""Checks every exported graph under a fixtures folder with the reference ONNX tools.

For each `<model>/model.onnx` written by `crates/aam-export/tests/onnx_parity.rs`:
`onnx.checker.check_model(full_check=True)`, named dynamic axes `batch` / `n_asv` and no
anonymous dims on inputs and outputs, the `aam_config` metadata, then onnxruntime (CPU)
on every `<case>.tokens.npy` (with `<case>.counts.npy` and `<case>.categorical_ids.npy`
for models that take them) against the Burn outputs `<case>.<output>.npy` (max |diff|
<= 1e-4, no NaN).

With `--split EXPORT_DIR` (repeatable) it also checks the split graphs of an export
directory: `asv_encoder.onnx` and `sample_model.onnx` pass the checker, carry the same
`aam_config` as `model.onnx`, and composed in onnxruntime (each unique ASV row encoded once,
gathered into `[batch, n_asv, D]`) they equal `model.onnx` within 1e-5.

Usage: python scripts/check_onnx.py FIXTURES_DIR [--split EXPORT_DIR ...]
"""

import glob
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

TOLERANCE = 1e-4


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def check_model(model_dir):
    path = os.path.join(model_dir, "model.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    config = json.loads(meta["aam_config"])
    max_bp = config["model"]["max_bp"]
    assert model.opset_import[0].version >= 17, "opset below 17"
    inp = model.graph.input[0]
    assert inp.name == "tokens", inp.name
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert dims(inp) == ["batch", "n_asv", max_bp + 1], dims(inp)
    # A model with a count embedding or abundance-weighted pooling takes the slots' read counts as a second input.
    uses_counts = config["model"].get("count_embedding", False) or config["model"].get("abundance_pooling", False)
    # A predictor conditioned on metadata categories then takes `categorical_ids`.
    columns = config["model"].get("categorical_cardinalities", {})
    conditioned = config["kind"] == "predictor" and len(columns) > 0
    expected_inputs = 1 + int(uses_counts) + int(conditioned)
    assert len(model.graph.input) == expected_inputs, [i.name for i in model.graph.input]
    if uses_counts:
        c = model.graph.input[1]
        assert c.name == "counts" and c.type.tensor_type.elem_type == onnx.TensorProto.FLOAT, c.name
        assert dims(c) == ["batch", "n_asv", 1], dims(c)
    if conditioned:
        c = model.graph.input[-1]
        assert c.name == "categorical_ids" and c.type.tensor_type.elem_type == onnx.TensorProto.INT64, c.name
        assert dims(c) == ["batch", len(columns)], dims(c)
    for out in model.graph.output:
        d = dims(out)
        assert all(x not in ("", 0) for x in d), f"{out.name} has an anonymous dim: {d}"
        assert d[0] == "batch", f"{out.name}: {d}"
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    checks = 0
    for tokens_file in sorted(glob.glob(os.path.join(model_dir, "*.tokens.npy"))):
        case = os.path.basename(tokens_file)[: -len(".tokens.npy")]
        tokens = np.load(tokens_file)
        feeds = {"tokens": tokens}
        if uses_counts:
            feeds["counts"] = np.load(os.path.join(model_dir, f"{case}.counts.npy"))
        if conditioned:
            feeds["categorical_ids"] = np.load(os.path.join(model_dir, f"{case}.categorical_ids.npy"))
        outputs = dict(zip(names, session.run(None, feeds)))
        for expected_file in glob.glob(os.path.join(model_dir, f"{case}.*.npy")):
            out = os.path.basename(expected_file)[len(case) + 1 : -len(".npy")]
            if out in ("tokens", "counts", "categorical_ids"):
                continue
            want = np.load(expected_file)
            got = outputs[out]
            assert got.shape == want.shape, f"{case} {out}: {got.shape} vs {want.shape}"
            assert np.isfinite(got).all(), f"{case} {out}: non-finite values"
            diff = float(np.abs(got - want).max())
            assert diff <= TOLERANCE, f"{case} {out}: onnxruntime vs burn max |diff| {diff}"
            checks += 1
    assert checks > 0, f"{model_dir}: no test case found"
    return checks


SPLIT_TOLERANCE = 1e-5


def split_tokens(batch, n_asv, width, seed):
    """Tokens drawn from a pool of 5 sequences (repeats within and across samples), with empty
    slots and an all-padding last sample."""
    rng = np.random.default_rng(seed)
    pool = np.zeros((5, width), np.int64)
    for i in range(5):
        n = int(rng.integers(10, width))
        pool[i, 0] = 5
        pool[i, 1:n] = rng.integers(1, 5, size=n - 1)
    tokens = np.zeros((batch, n_asv, width), np.int64)
    for b in range(max(batch - 1, 1)):
        for s in range(n_asv):
            if (b + s) % 4 != 3:
                tokens[b, s] = pool[rng.integers(0, 5)]
    return tokens


def check_split(export_dir):
    full_path = os.path.join(export_dir, "model.onnx")
    config_json = {p.key: p.value for p in onnx.load(full_path).metadata_props}["aam_config"]
    config = json.loads(config_json)["model"]
    width, d = config["max_bp"] + 1, config["embedding_dim"]
    graphs = {}
    for name, inputs in [("asv_encoder", {"asv_tokens": ["n", width]}),
                         ("sample_model", {"asv_embeddings": ["batch", "n_asv", d], "asv_mask": ["batch", "n_asv"]})]:
        path = os.path.join(export_dir, f"{name}.onnx")
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["aam_config"] == config_json, f"{name}: another model's configuration"
        assert {i.name: dims(i) for i in model.graph.input} == inputs, f"{name}: inputs {[dims(i) for i in model.graph.input]}"
        graphs[name] = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    full = ort.InferenceSession(full_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in full.get_outputs()]
    assert [o.name for o in graphs["sample_model"].get_outputs()] == names
    worst = 0.0
    for batch, n_asv, seed in [(1, 1, 0), (3, 17, 1), (8, config["token_limit"], 2)]:
        tokens = split_tokens(batch, n_asv, width, seed)
        want = full.run(None, {"tokens": tokens})
        rows = tokens.reshape(-1, width)
        present = rows.any(axis=1)
        unique, index = np.unique(rows[present], axis=0, return_inverse=True)
        (emb,) = graphs["asv_encoder"].run(None, {"asv_tokens": unique})
        asv = np.zeros((rows.shape[0], d), np.float32)
        asv[present] = emb[index.reshape(-1)]
        got = graphs["sample_model"].run(None, {
            "asv_embeddings": asv.reshape(batch, n_asv, d),
            "asv_mask": present.reshape(batch, n_asv).astype(np.float32),
        })
        for name, g, w in zip(names, got, want):
            assert g.shape == w.shape and np.isfinite(g).all(), name
            worst = max(worst, float(np.abs(g - w).max()))
    assert worst <= SPLIT_TOLERANCE, f"split vs model.onnx max |diff| {worst}"
    return worst


def main():
    args = sys.argv[1:]
    root = args[0]
    split_dirs = [args[i + 1] for i, a in enumerate(args) if a == "--split"]
    model_dirs = sorted(d for d in glob.glob(os.path.join(root, "*")) if os.path.isdir(d))
    passed, failed = 0, 0
    for d in model_dirs:
        try:
            n = check_model(d)
            print(f"ok {os.path.basename(d)}: checker (full_check) and {n} onnxruntime comparisons")
            passed += 1
        except Exception as e:  # report every model, then fail
            print(f"FAILED {os.path.basename(d)}: {e!r}")
            failed += 1
    for d in split_dirs:
        try:
            worst = check_split(d)
            print(f"ok {d}: split graphs pass the checker; composed = model.onnx (max |diff| {worst:.2e})")
            passed += 1
        except Exception as e:
            print(f"FAILED split {d}: {e!r}")
            failed += 1
    if not model_dirs:
        print(f"no exported models under {root}")
        failed += 1
    print(f"onnx: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
