"""Bad model files and bad shapes get one line and exit 2 (issue 14, the model readers).

Two parts: a replay table of the inputs an audit found raising tracebacks (each must raise a RooflineError
subclass with a one-line message, and ``roofline count`` must exit 2 with one line on stderr), and a seeded
mutation fuzz over ONNX and TFLite files built here (bytes flipped, overwritten, truncated; flatbuffer fields
rewritten through the schema's object API; protobuf fields rewritten) in which every mutant either counts to
finite, non-negative MACs and bytes or raises a RooflineError, never anything else.
"""

from __future__ import annotations

import lzma
import math
import random
import struct
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from roofline import zoo
from roofline.cli import main
from roofline.counting.table import count
from roofline.errors import InvalidParameterError, ModelLoadError, RooflineError, ShapeError
from roofline.profilers.tflite_writer import TfliteWriter, example_network, tflite_kernel
from roofline.zoo.builder import GraphBuilder, build_network

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
flatbuffers = pytest.importorskip("flatbuffers")

DATA = Path(__file__).parent / "data" / "converters"


# ---- models the cases start from -------------------------------------------------------------------------


def _relu(shape, opset=17) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _conv_int_kernel() -> onnx.ModelProto:
    """A Conv whose kernel_shape is an INT where the schema says INTS."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=3)
    model = helper.make_model(helper.make_graph([node], "g", [x, w], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _bytes_op_type() -> bytes:
    """An ONNX file whose node op_type is not UTF-8 (protobuf hands such a string back as bytes)."""
    data = _relu([1, 3, 8, 8]).SerializeToString()
    assert data.count(b"Relu") == 1
    return data.replace(b"Relu", b"R\xfflu")


def _unpack(data: bytes):
    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def _pack(model) -> bytes:
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _tflite_edit(edit) -> bytes:
    """The example network with ``edit(model)`` applied through the object API."""
    model = _unpack(example_network("fp32"))
    edit(model)
    return _pack(model)


def _conv_with_topk_options(model) -> None:  # the CONV_2D's options are another operator's
    op = model.subgraphs[0].operators[0]
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.TopKV2Options, schema.TopKV2OptionsT()


def _input_index_out_of_range(model) -> None:
    model.subgraphs[0].operators[0].inputs[0] = 10_000


def _opcode_out_of_range(model) -> None:
    model.subgraphs[0].operators[1].opcodeIndex = 77


def _weight_without_shape(model) -> None:  # a stored weight with no shape: its buffer holds too much
    sub = model.subgraphs[0]
    sub.tensors[sub.operators[0].inputs[1]].shape = None


def _zero_size_input(model) -> None:
    sub = model.subgraphs[0]
    sub.tensors[sub.inputs[0]].shape = [1, 0, 32, 3]


def _subgraph_calls_itself() -> bytes:
    tw = TfliteWriter()
    x = tw.tensor((1, 4))
    y = tw.tensor((1, 4))
    tw.op("CALL", [x], [y], "CallOptions", subgraph=0)
    return tw.finish([x], [y])


# ---- the replay table ------------------------------------------------------------------------------------

# id -> (model: ONNX ModelProto, TFLite or ONNX bytes, CLI extra arguments, library input_shapes,
#        error class, text the message holds)
CASES = {
    "absurd-input-shape": (_relu([1, 3, 8, 8]), ["--input-shape", "x=1x3x99999999999999999999x1"],
                           {"x": (1, 3, 10**20, 1)}, ShapeError, "at most 2**34"),
    "negative-input-shape": (_relu([1, 3, 8, 8]), ["--input-shape", "x=1x3x-5x1"], {"x": (1, 3, -5, 1)},
                             ShapeError, "positive"),
    "zero-input-shape": (_relu([1, 3, 8, 8]), ["--input-shape", "x=1x3x0x1"], {"x": (1, 3, 0, 1)}, ShapeError,
                         "positive"),
    "text-input-shape": (_relu([1, 3, 8, 8]), ["--input-shape", "x=1x3xeightx1"], {"x": "1x3x8x8"}, ShapeError,
                         "integers"),
    "zero-dim-in-model": (_relu([1, 3, 0, 8]), [], None, ShapeError, "zero-size dimension at position 2"),
    "opset-99": (_relu([1, 3, 8, 8], opset=99), [], None, ModelLoadError, "opset 99"),
    "opset-0": (_relu([1, 3, 8, 8], opset=0), [], None, ModelLoadError, "opset 0"),
    "op-type-not-utf8": (_bytes_op_type(), [], None, ModelLoadError, "not valid UTF-8"),
    "attribute-of-wrong-type": (_conv_int_kernel(), [], None, ModelLoadError, "'kernel_shape' of type INT"),
    "onnx-truncated": (_relu([1, 3, 8, 8]).SerializeToString()[:-9], [], None, ModelLoadError, "ONNX"),
    "tflite-truncated": (example_network("fp32")[:3000], [], None, ModelLoadError, "TFLite"),
    "tflite-options-of-another-op": (_tflite_edit(_conv_with_topk_options), [], None, ModelLoadError, "strideH"),
    "tflite-tensor-index": (_tflite_edit(_input_index_out_of_range), [], None, ModelLoadError, "tensor 10000"),
    "tflite-opcode-index": (_tflite_edit(_opcode_out_of_range), [], None, ModelLoadError, "opcode index 77"),
    "tflite-weight-without-shape": (_tflite_edit(_weight_without_shape), [], None, ShapeError, "buffer holds"),
    "tflite-zero-size-input": (_tflite_edit(_zero_size_input), [], None, ShapeError, "zero-size dimension"),
    "tflite-absurd-input-shape": (example_network("fp32", open_input=True), [], {"input": (1, 2**40, 32, 3)},
                                  ShapeError, "positive and sane"),
    "tflite-recursive-call": (_subgraph_calls_itself(), [], None, ModelLoadError, "calls itself"),
}  # fmt: skip


def _write(tmp_path: Path, model) -> Path:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    path = tmp_path / ("m.tflite" if data[4:8] == b"TFL3" else "m.onnx")
    path.write_bytes(data)
    return path


def _cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("case", CASES)
def test_replay_library_error(case, tmp_path):
    model, _, shapes, error, text = CASES[case]
    with pytest.raises(error) as info:
        count(_write(tmp_path, model), input_shapes=shapes)
    message = str(info.value)
    assert text in message and "\n" not in message, message


@pytest.mark.parametrize("case", CASES)
def test_replay_cli_exit_2(case, tmp_path, capsys):
    model, extra, shapes, _, text = CASES[case]
    if shapes and not extra:  # a shape the command line cannot spell differently: given as the library takes it
        extra = ["--input-shape", "{}={}".format(*next((k, "x".join(map(str, v))) for k, v in shapes.items()))]
    code, err = _cli(["count", str(_write(tmp_path, model)), *extra], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("roofline: error: "), err


def test_absurd_cli_shape_is_refused_before_loading(capsys, tmp_path):
    code, err = _cli(["count", str(_write(tmp_path, _relu([1, 3, 8, 8]))), "--input-shape", "x=1x3x1e9x1"], capsys)
    assert code == 2 and len(err) == 1
    code, err = _cli(["count", "mobilenet_v2", "--input-shape", "input=1x3x99999999999999999999x224"], capsys)
    assert code == 2 and err == [
        "roofline: error: --input-shape 'input=1x3x99999999999999999999x224': every size must be a whole number "
        "from 1 to 2**34, got 99999999999999999999"
    ]


def test_supported_opsets_still_count():
    """The opset check refuses only what the installed onnx does not know."""
    top = onnx.defs.onnx_opset_version()
    for opset in (7, 13, top):
        assert count(_relu([1, 3, 8, 8], opset=opset)).attrs["totals"]["macs"] == 0


def test_builder_errors_are_library_errors():
    with pytest.raises(InvalidParameterError, match="'weights' parameter must be one of"):
        GraphBuilder("n", (1, 3, 8, 8), weights="heavy")
    with pytest.raises(InvalidParameterError, match="unknown activation 'rellu'.*did you mean 'relu'"):
        GraphBuilder("n", (1, 3, 8, 8)).act("input", "rellu")
    with pytest.raises(ShapeError, match="input shape must be positive"):
        GraphBuilder("n", (1, 3, 0, 8))
    with pytest.raises(InvalidParameterError, match="'resolution' parameter"):
        build_network("conv_k3_s2_c16", 0)
    with pytest.raises(InvalidParameterError, match="'width' parameter"):
        build_network("conv_k3_s2_c16", 32, width=float("nan"))
    with pytest.raises(ShapeError, match="'pool' would have output shape 1x3x0x0"):
        GraphBuilder("n", (1, 3, 2, 2)).node("AveragePool", ["input"], (1, 3, 0, 0), name="pool")


# ---- the mutation fuzz -----------------------------------------------------------------------------------


def _seeds() -> dict[str, bytes]:
    """Small files of every kind the readers take: built ONNX, a converter's ONNX, written and converted TFLite."""
    return {
        "zoo.onnx": zoo.build("mobilenet_v3_small", resolution=32).SerializeToString(),
        "torchvision.onnx": (DATA / "torchvision" / "mobilenet_v3_small.opset17.onnx").read_bytes(),
        "example_fp32.tflite": example_network("fp32"),
        "example_int8.tflite": example_network("int8"),
        "kernel.tflite": tflite_kernel("dwconv_k3_s1_c32_h16_w16_int8"),
        "keras_unet.tflite": lzma.decompress((DATA / "keras" / "tiny_unet_attention.int8.tflite.xz").read_bytes()),
    }


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # random bytes
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == 2:  # an aligned 32-bit word (flatbuffer offsets, indices, sizes) set to an extreme
        i = rng.randrange(max(len(b) - 4, 1)) & ~3
        b[i : i + 4] = struct.pack("<i", rng.choice([0, 1, -1, 2**31 - 1, -(2**31), rng.randrange(256)]))
    elif kind == 3:  # truncated
        b = b[: rng.randrange(len(b))]
    else:  # a run of random bytes
        i, n = rng.randrange(len(b)), rng.randint(1, 64)
        b[i : i + n] = bytes(rng.randrange(256) for _ in range(n))
    return bytes(b)


_EXTREMES = [0, 1, -1, 2, 3, 7, 99, 255, 2**31 - 1, -(2**31), 2**20, -7]


def _fields(obj, out: list, depth: int = 0) -> list:
    """(object, attribute) of every field of a flatbuffer object-API tree."""
    if depth > 8:
        return out
    for key, value in vars(obj).items():
        out.append((obj, key))
        children = value if isinstance(value, list) else [value]
        for child in children:
            if hasattr(child, "__dict__") and not isinstance(child, np.ndarray):
                _fields(child, out, depth + 1)
    return out


def _new_value(rng: random.Random, value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, float):
        return rng.choice([math.nan, math.inf, -1.0, 0.0, 1e30])
    if isinstance(value, int) or value is None:
        return rng.choice([*_EXTREMES, rng.randrange(-300, 300)])
    if isinstance(value, (bytes, str)):
        return rng.choice([b"\xff\xfe", b"", b"\x80abc", "x"])
    if isinstance(value, np.ndarray) or (isinstance(value, list) and not any(hasattr(v, "__dict__") for v in value)):
        items = [int(v) for v in np.ravel(value)] if len(value) else []
        choice = rng.randrange(4)
        if choice == 0 and items:
            items[rng.randrange(len(items))] = rng.choice(_EXTREMES)
        elif choice == 1:
            items = items[: rng.randrange(len(items) + 1)]
        elif choice == 2:
            return None
        else:
            items = [rng.choice(_EXTREMES) for _ in range(rng.randrange(6))]
        return items
    if isinstance(value, list):
        return value[: rng.randrange(len(value) + 1)] if rng.random() < 0.7 else None
    return None  # a table: dropped


def _mutate_tflite_fields(rng: random.Random, data: bytes) -> bytes | None:
    """The model with one to three fields rewritten through the object API (a file that decodes, but lies)."""
    for _ in range(8):  # some rewrites do not pack (a list of ints where a table belongs): draw again
        model = _unpack(data)
        fields = _fields(model, [])
        for _ in range(rng.randint(1, 3)):
            obj, key = rng.choice(fields)
            if key == "builtinOptionsType":
                setattr(obj, key, rng.randrange(1, 130))
            else:
                setattr(obj, key, _new_value(rng, getattr(obj, key)))
        try:
            return _pack(model)
        except (TypeError, ValueError, AttributeError, struct.error, OverflowError):
            continue
    return None


def _mutate_onnx_fields(rng: random.Random, data: bytes) -> bytes:
    """The model with one to three protobuf fields rewritten (op types, inputs, attributes, dims, opsets)."""
    m = onnx.ModelProto()
    m.ParseFromString(data)
    g = m.graph
    for _ in range(rng.randint(1, 3)):
        node = rng.choice(g.node)
        choice = rng.randrange(8)
        if choice == 0:
            m.opset_import[0].version = rng.choice([0, 1, 6, 99, -3])
        elif choice == 1:
            node.op_type = rng.choice(["Conv", "Relu", "Foo", "Loop", "Reshape", "Gemm", "If", ""])
        elif choice == 2 and node.input:
            node.input[rng.randrange(len(node.input))] = rng.choice(["", "nope", g.input[0].name, node.output[0]])
        elif choice == 3 and g.initializer:
            t = rng.choice(g.initializer)
            if t.dims:
                t.dims[rng.randrange(len(t.dims))] = rng.choice(_EXTREMES)
            else:
                t.data_type = rng.randrange(30)
        elif choice == 4:
            dims = g.input[0].type.tensor_type.shape.dim
            dims[rng.randrange(len(dims))].dim_value = rng.choice([0, 1, 2, 5, 10**12])
        elif choice == 5:
            node.domain = rng.choice(["com.microsoft", "ai.onnx.ml", "x"])
        elif choice == 6 and len(g.node) > 1:
            g.node.remove(node)
        else:
            name = rng.choice(["group", "kernel_shape", "axis", "perm", "strides", "pads", "dilations", "to"])
            node.attribute.append(helper.make_attribute(name, rng.choice([0, -1, [0, 0], [2**40], "s", 2.5, [3, 3]])))
    return m.SerializeToString()


def _outcome(data: bytes) -> str:
    """The outcome, "ok" (finite, non-negative MACs and bytes) or "error" (a one-line RooflineError); anything
    else raises."""
    try:
        table = count(data)
    except RooflineError as exc:
        assert "\n" not in str(exc), f"a multi-line message: {exc}"
        return "error"
    t = table.attrs["totals"]
    numbers = [t["macs"], t["bytes"], *table["macs"].fillna(0), *table["bytes"]]
    assert all(math.isfinite(v) and v >= 0 for v in numbers), t
    return "ok"


FUZZ = [  # (seed file, mutator, mutants)
    *[(name, "bytes", 60) for name in ("zoo.onnx", "torchvision.onnx")],
    *[(name, "bytes", 45) for name in ("example_fp32.tflite", "example_int8.tflite", "kernel.tflite",
                                       "keras_unet.tflite")],
    *[(name, "fields", 40) for name in ("example_fp32.tflite", "example_int8.tflite", "keras_unet.tflite")],
    *[(name, "fields", 30) for name in ("zoo.onnx", "torchvision.onnx")],
]  # fmt: skip


@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    return _seeds()


@pytest.mark.parametrize(("name", "mutator", "n"), FUZZ, ids=[f"{n}-{m}" for n, m, _ in FUZZ])
def test_mutants_count_or_raise_a_roofline_error(name, mutator, n, seeds):
    rng = random.Random(f"{name}-{mutator}")
    mutate = {
        "bytes": _mutate_bytes,
        "fields": _mutate_tflite_fields if name.endswith(".tflite") else _mutate_onnx_fields,
    }[mutator]
    outcomes = {"ok": 0, "error": 0, "unpackable": 0}
    for _ in range(n):
        data = mutate(rng, seeds[name])
        if data is None:
            outcomes["unpackable"] += 1
            continue
        outcomes[_outcome(data)] += 1  # anything but a RooflineError fails here, with its traceback
    assert outcomes["error"] > 0, outcomes  # the mutants do reach the readers' checks


def test_mutants_through_the_cli(seeds, tmp_path, capsys):
    """``roofline count FILE`` on mutants: exit 0, or exit 2 with one line on stderr."""
    rng = random.Random(14)
    codes = {0: 0, 2: 0}
    for k in range(48):
        name = list(seeds)[k % len(seeds)]
        data = _mutate_bytes(rng, seeds[name])
        path = tmp_path / f"{k}{Path(name).suffix}"
        path.write_bytes(data)
        code, err = _cli(["count", str(path)], capsys)
        assert code in codes, (name, code, err)
        codes[code] += 1
        if code == 2:
            assert len(err) == 1 and err[0].startswith("roofline: error: "), err
    assert codes[2] > 0, codes
