"""Checks every exported graph under a fixtures folder with the reference ONNX tools.

For each `<model>/model.onnx` written by `crates/aam-export/tests/onnx_parity.rs`:
`onnx.checker.check_model(full_check=True)`, named dynamic axes `batch` / `n_asv` and no
anonymous dims on inputs and outputs, the `aam_config` metadata, then onnxruntime (CPU)
on every `<case>.tokens.npy` against the Burn outputs `<case>.<output>.npy` (max |diff|
<= 1e-4, no NaN).

Usage: python scripts/check_onnx.py FIXTURES_DIR
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
    (inp,) = model.graph.input
    assert inp.name == "tokens", inp.name
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert dims(inp) == ["batch", "n_asv", max_bp + 1], dims(inp)
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
        outputs = dict(zip(names, session.run(None, {"tokens": tokens})))
        for expected_file in glob.glob(os.path.join(model_dir, f"{case}.*.npy")):
            out = os.path.basename(expected_file)[len(case) + 1 : -len(".npy")]
            if out == "tokens":
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


def main():
    root = sys.argv[1]
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
    if not model_dirs:
        print(f"no exported models under {root}")
        failed += 1
    print(f"onnx: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
