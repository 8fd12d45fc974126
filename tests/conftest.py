"""Shared helpers: tiny ONNX graphs built with onnx.helper; a fresh user's home for the adb tests."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

NP = {"f32": np.float32, "f16": np.float16, "i64": np.int64, "i32": np.int32, "u8": np.uint8, "bool": np.bool_}


def make_model(nodes, inputs, consts=(), outputs=None, opset=17, infer=True):
    """inputs: [(name, shape, dtype)], consts: [(name, array)], outputs: names (default: last node's outputs)."""
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(NP[d])), s) for n, s, d in inputs
    ]
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in consts]
    outputs = outputs or [o for o in nodes[-1].output if o]
    graph_outputs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs]
    graph = helper.make_graph(nodes, "test", graph_inputs, graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    return model


@pytest.fixture
def tmp_model(tmp_path):
    def write(model, name="m.onnx"):
        path = tmp_path / name
        onnx.save(model, path)
        return path

    return write


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh user: no adb key yet, no remembered binaries (HOME, ROOFLINE_ADB_KEY, ROOFLINE_CONFIG)."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROOFLINE_ADB_KEY", str(tmp_path / "home" / "roofline_adbkey"))
    monkeypatch.setenv("ROOFLINE_CONFIG", str(tmp_path / "home" / "config"))
    return tmp_path / "home"


@pytest.fixture
def phone(tmp_path):
    """The loopback test phone (tests/fakes/loopback_adb.py), on 127.0.0.1."""
    from fakes.loopback_adb import LoopbackDevice

    with LoopbackDevice(tmp_path / "phone") as device:
        yield device


@pytest.fixture
def binary(tmp_path):
    """The loopback phone's ``benchmark_model`` stand-in, to push."""
    from fakes.loopback_adb import write_benchmark_standin

    return write_benchmark_standin(tmp_path / "benchmark_model")
