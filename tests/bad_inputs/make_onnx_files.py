"""Writes the three small ONNX files of the bad-input catalogue (run from this folder
with the test venv: `../../.venv/bin/python make_onnx_files.py`). They are committed;
this script records how they were made.

- files/identity.onnx: a valid ONNX model that `aam export` did not write (an Identity
  graph, no `aam_config` metadata).
- files/huge_initializer.onnx: the shipped model's metadata on a graph whose initializer
  claims [100000, 100000] f32 (40 GB) but holds 16 bytes: must be refused before
  anything that size is allocated.
- files/external_data.onnx: the shipped model's metadata on a graph whose initializer
  points at external data (/etc/passwd): must be refused without reading that file.
"""
import onnx
from onnx import TensorProto, helper

shipped = onnx.load("../../models/circadian-exposure/model.onnx")


def graph_with(initializer, name):
    g = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])], name, [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[initializer])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


g = helper.make_graph(
    [helper.make_node("Identity", ["x"], ["y"])], "identity",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), "files/identity.onnx")

huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[100000, 100000], raw_data=b"\0" * 16)
m = graph_with(huge, "huge")
m.metadata_props.extend(shipped.metadata_props)
open("files/huge_initializer.onnx", "wb").write(m.SerializeToString())

ext = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[100000, 100000],
                  data_location=TensorProto.EXTERNAL)
e = ext.external_data.add()
e.key, e.value = "location", "/etc/passwd"
m = graph_with(ext, "external")
m.metadata_props.extend(shipped.metadata_props)
open("files/external_data.onnx", "wb").write(m.SerializeToString())
