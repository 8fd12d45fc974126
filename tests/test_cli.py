"""The command line: each command runs, bad input gets one clear line and exit code 2, no traceback."""

from __future__ import annotations

import re
import subprocess
import sys

import onnx
import pytest
import yaml
from conftest import make_model
from onnx import helper

from roofline.cli import main


@pytest.fixture
def mnv2(tmp_path):
    from roofline import zoo

    path = tmp_path / "mnv2.onnx"
    onnx.save(zoo.build("mobilenet_v2", width=0.5, resolution=96), path)
    return path


def test_count_prints_table_and_writes_csv(mnv2, tmp_path, capsys):
    csv = tmp_path / "layers.csv"
    assert main(["count", str(mnv2), "--fuse", "runtime", "--weight-dtype", "int8", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "Conv+BatchNormalization+Clip" in out and "total:" in out
    import pandas as pd

    df = pd.read_csv(csv)
    assert {"macs", "weight_bytes", "input_bytes", "output_bytes", "intensity_macs_per_byte"} <= set(df.columns)


def test_predict_and_devices(mnv2, capsys):
    assert main(["predict", str(mnv2), "--device", "pixel6_cpu", "--device", "adreno_640", "--layers", "3"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"pixel6_cpu .* [\d.]+ [kMG]? ?MAC-eq \*", out) and re.search(r"adreno_640 .* [\d.]+ ms", out)
    assert out.count("slowest 3 layers") == 2
    assert main(["devices"]) == 0 and "pixel8_edgetpu" in capsys.readouterr().out
    assert main(["devices", "coral_edgetpu"]) == 0 and "sources:" in capsys.readouterr().out
    assert main(["devices", "pixel6_cpu_fitted"]) == 0  # a spec fitted per kind shows its fits and their error
    out = capsys.readouterr().out
    assert "fitted per layer kind" in out and "leave-one-out cross-validation" in out and "MACs/byte" not in out


def test_default_command_runs_the_sweep(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "mnv4_conv_s" in out and "pixel4_dsp" in out and "pixel8_edgetpu" in out
    import pandas as pd

    df = pd.read_csv(tmp_path / "roofline-out" / "roofline_sweep.csv")
    assert set(df.model) == set(roofline_zoo_names()) and df.ridge_macs_per_byte.max() == 500
    assert (tmp_path / "roofline-out" / "roofline_sweep.png").stat().st_size > 10_000


def roofline_zoo_names():
    from roofline import zoo

    return zoo.list_models()


def test_zoo_and_plot_commands(tmp_path, capsys):
    assert main(["zoo", "list"]) == 0 and "mnv4_hybrid_l" in capsys.readouterr().out
    assert main(["zoo", "export", "mnv4_conv_s", "-o", str(tmp_path / "s.onnx")]) == 0
    assert onnx.load(tmp_path / "s.onnx").graph.name == "mnv4_conv_s"
    for fig in (
        ["roofline", "mnv4_conv_s", "--device", "coral_edgetpu"],
        ["breakdown", "mobilenet_v2"],
        ["pareto", "--ridge", "100"],
    ):
        assert main(["plot", *fig, "-o", str(tmp_path / "f.png")]) == 0, fig
    assert main(["plot", "roofline", "-o", str(tmp_path / "f.png")]) == 2


def _bad_inputs(tmp_path):
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07\x12\xff\xff\xff" * 10)
    (tmp_path / "notes.txt").write_text("not a model at all")
    unknown = make_model([helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")], [("x", (1, 4), "f32")])
    unknown.opset_import.append(helper.make_opsetid("com.example", 1))
    onnx.save(unknown, tmp_path / "unknown.onnx")
    dyn = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)]))  # fmt: skip
    onnx.save(dyn, tmp_path / "dynamic.onnx")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"name": "bad", "display_name": "Bad", "kind": "cpu",
        "default_precision": "int8", "provenance": "datasheet", "sources": ["x"], "ridge_macs_per_byte": {"int8": -3}}))  # fmt: skip
    ok = tmp_path / "ok.onnx"
    onnx.save(make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", (1, 4), "f32")]), ok)
    return {
        "corrupt file": (["count", str(tmp_path / "corrupt.onnx")], "not a valid ONNX model"),
        "not ONNX": (["count", str(tmp_path / "notes.txt")], "not"),
        "missing file": (["count", str(tmp_path / "nope.onnx")], "does not exist"),
        "unknown op": (["count", str(tmp_path / "unknown.onnx")], "no counting rule for op type com.example::Frobnicate"),
        "missing input shape": (["count", str(tmp_path / "dynamic.onnx")], "symbolic dimension 'batch'"),
        "device typo": (["predict", str(ok), "--device", "pixel6_cpuu"], "did you mean 'pixel6_cpu'"),
        "bad spec field": (["predict", str(ok), "--device", str(tmp_path / "bad.yaml")],
                           "bad.yaml: field 'ridge_macs_per_byte.int8': must be a positive number"),
        "bad input shape flag": (["count", str(ok), "--input-shape", "x=1xfour"], "expected NAME=1x3x224x224"),
    }  # fmt: skip


def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys):
    for label, (argv, message) in _bad_inputs(tmp_path).items():
        assert main(argv) == 2, label
        err = capsys.readouterr().err.strip()
        assert err.startswith("roofline: error: ") and message in err and "\n" not in err, (label, err)


def test_installed_console_script_has_no_traceback(tmp_path):
    # the real entry point, in a subprocess: nothing but the one line on stderr
    cases = _bad_inputs(tmp_path)
    exe = [sys.executable, "-c", "import sys; from roofline.cli import main; sys.exit(main())"]
    for label in ("corrupt file", "device typo"):
        r = subprocess.run(exe + cases[label][0], capture_output=True, text=True)
        assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, label


def test_help_everywhere(capsys):
    for argv in (["--help"], ["count", "--help"], ["predict", "--help"], ["devices", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    assert "--weight-dtype" in capsys.readouterr().out


def test_unknown_op_can_be_reported(tmp_path, capsys):
    path = tmp_path / "u.onnx"
    model = make_model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Frobnicate", ["r"], ["y"], domain="x.y")],
                       [("x", (1, 4), "f32")])  # fmt: skip
    model.opset_import.append(helper.make_opsetid("x.y", 1))
    onnx.save(model, path)
    assert main(["count", str(path), "--report-unknown"]) == 0
    assert "unknown ops (no MACs counted): Frobnicate" in capsys.readouterr().out
    # every command that counts takes the same flag: without it, one line and exit 2
    for argv in (["predict", str(path), "--device", "pixel6_cpu"],
                 ["sweep", str(path), "--max-ridge", "5", "--out-dir", str(tmp_path / "s")]):  # fmt: skip
        assert main(argv) == 2
        assert "no counting rule for op type x.y::Frobnicate" in capsys.readouterr().err
        assert main([*argv, "--report-unknown"]) == 0
    assert (tmp_path / "s" / "roofline_sweep.csv").exists()


def test_validate_refuses_unknown_ops_before_measuring(tmp_path, capsys):
    path = tmp_path / "u.onnx"
    model = make_model([helper.make_node("Frobnicate", ["x"], ["y"], domain="x.y")], [("x", (1, 4), "f32")])
    model.opset_import.append(helper.make_opsetid("x.y", 1))
    onnx.save(model, path)
    assert main(["validate", str(path), "--lut", str(tmp_path / "lut.csv"), "--spec", "pixel6_cpu"]) == 2
    assert "no counting rule" in capsys.readouterr().err and not (tmp_path / "lut.csv").exists()


def test_every_model_command_says_onnx_or_tflite(capsys):
    for command in ("count", "predict", "sweep", "validate", "lut", "plot"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "TFLite" in capsys.readouterr().out, command


def test_python_api_takes_zoo_names_like_the_cli():
    import roofline
    from roofline.errors import ModelLoadError

    assert roofline.totals(roofline.count("mobilenet_v2"))["macs"] == 300_774_272
    assert roofline.predict("mobilenet_v2", "pixel6_cpu").totals.latency_mac_equiv.iloc[0] > 0
    with pytest.raises(ModelLoadError, match="did you mean 'mobilenet_v2'"):
        roofline.count("mobilenet_v9")


def test_ci_runs_the_readme_test_command():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    setup = readme.split("```")[1].strip().splitlines()[1:]  # the first block, after its language tag
    commands = [line for line in setup if line and not line.startswith("#")]
    assert len(commands) == 2, commands
    assert commands[1] in (root / ".ci" / "run").read_text()
