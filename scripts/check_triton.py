"""The Triton model repository written by `aam export --triton` against Triton's own
model-configuration schema and the ONNX graph it serves.

Usage: check_triton.py REPOSITORY MODEL_NAME

- `config.pbtxt` parses as Triton's `ModelConfig` protobuf (`model_config_pb2` from the
  tritonclient package, loaded without its gRPC client), so every field name and enum
  value is one Triton reads;
- `1/model.onnx` passes the ONNX checker, and its inputs and outputs are the config's,
  name for name, with the same element types and the dims after the batch axis
  (dynamic axes as -1);
- a classifier's `labels.txt` has one label per class probability;
- ONNX Runtime runs the model on a batch of `max_batch_size` samples.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from google.protobuf import text_format

ONNX_TO_TRITON = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.INT32: "TYPE_INT32",
}


def model_config_pb2():
    spec = importlib.util.find_spec("tritonclient")
    path = Path(spec.submodule_search_locations[0]) / "grpc" / "model_config_pb2.py"
    module_spec = importlib.util.spec_from_file_location("model_config_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def main():
    repo, name = Path(sys.argv[1]), sys.argv[2]
    pb2 = model_config_pb2()
    config = text_format.Parse((repo / name / "config.pbtxt").read_text(), pb2.ModelConfig())
    assert config.name == name, config.name
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size > 0
    assert config.HasField("dynamic_batching")
    model_path = repo / name / "1" / "model.onnx"
    model = onnx.load(str(model_path))
    onnx.checker.check_model(model)
    graph = model.graph
    initializers = {i.name for i in graph.initializer}

    def expected(values):
        out = []
        for v in values:
            if v.name in initializers:
                continue
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            assert t.shape.dim[0].HasField("dim_param"), f"{v.name}: no dynamic batch axis"
            out.append((v.name, ONNX_TO_TRITON[t.elem_type], dims[1:]))
        return out

    def configured(tensors):
        return [
            (t.name, pb2.DataType.Name(t.data_type), list(t.dims)) for t in tensors
        ]

    assert configured(config.input) == expected(graph.input), (configured(config.input), expected(graph.input))
    assert configured(config.output) == expected(graph.output), (configured(config.output), expected(graph.output))
    for t in config.output:
        if t.label_filename:
            labels = (repo / name / t.label_filename).read_text().splitlines()
            assert len(labels) == t.dims[0], (labels, list(t.dims))
    # The model runs at the largest batch Triton forms.
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    (tokens,) = [t for t in config.input]
    width = tokens.dims[-1]
    batch = np.zeros((config.max_batch_size, 3, width), dtype=np.int64)
    batch[:, :, 0] = 5
    batch[:, :, 1:40] = 1 + np.arange(39) % 4
    results = session.run(None, {tokens.name: batch})
    for out, t in zip(results, config.output):
        assert out.shape[0] == config.max_batch_size and np.isfinite(out).all(), t.name
    print(f"triton repository {repo}/{name}: config.pbtxt matches Triton's schema and the graph "
          f"({len(config.input)} input, {len(config.output)} outputs), max batch {config.max_batch_size} runs")


if __name__ == "__main__":
    main()
