"""Every bad input a user can give the CLI ends in one line on stderr and exit 2 (issue 14).

Two parts: a replay table of the audit's cases (each through ``main``, plain and with ROOFLINE_DEBUG=1,
which shows the traceback instead), and a seeded mutation fuzz over device spec YAML: every mutant
either loads as a spec that predicts, or raises a RooflineError; through the CLI, exit 0 or 2.
"""

from __future__ import annotations

import math
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import onnx
import pytest
from onnx import helper

import roofline
from roofline.cli import main
from roofline.devices import KINDS, spec_dir
from roofline.errors import InvalidParameterError, RooflineError

TINY = """\
name: {name}
display_name: Tiny NPU
kind: npu
default_precision: int8
provenance: datasheet
peak_macs_per_s:
  int8: 2.0e+12
  fp16: 1.0e+12
bandwidth_bytes_per_s: 2.0e+10
sources:
- a datasheet, page 3
notes: a hand-written spec
"""

# hand-written specs that use the optional fields the shipped ones seldom do
HAND = {
    "hand_ridge": "name: hand_ridge\ndisplay_name: Ridge only\nkind: dsp\ndefault_precision: int8\n"
    "provenance: datasheet\nridge_macs_per_byte:\n  int8: 120\n  fp32: 30.5\nsources:\n- a paper\n",
    "hand_memory": TINY.format(name="hand_memory") + "memory:\n  on_chip_bytes: 8000000\n  keeps:\n  - weights\n"
    "  - activations\nfusion: runtime\nefficiency:\n  compute: 0.5\n  memory: 0.8\nfingerprint:\n  soc: x1\n"
    "  cores: 8\n",
    "hand_fitted": TINY.format(name="hand_fitted").replace("kind: npu", "kind: cpu").replace("  fp16: 1.0e+12\n", "")
    + "calibration:\n  conv:\n    peak_macs_per_s: 1.0e+11\n    bandwidth_bytes_per_s: 5.0e+9\n    overhead_s: 1.0e-6\n"
    "  pool:\n    peak_macs_per_s: null\n    bandwidth_bytes_per_s: 3.0e+9\n  weights:\n    bandwidth_bytes_per_s: 2.0e+9\n"
    "    cache_bytes: 4000000\n  network:\n    overhead_s: 0.0002\nfit:\n  data: a table\n  rows: 11\n  cv:\n"
    "    folds: leave-one-out\n    within_10pct: 0.8\n    median_abs_error: 0.05\n    spearman: 0.99\n",
}


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("roofline: error: "), err
    return lines[0]


# ---- the replay table ---------------------------------------------------------------------------


def _cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """label -> (argv, what the one line must name)."""
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        )
    )
    onnx.save(model, tmp / "model.onnx")
    tiny = TINY.format(name="bad")
    specs = {
        "non-UTF-8 spec": _write(tmp / "utf8" / "bad.yaml", b"name: bad\ndisplay_name: \xff\xfe\xfa\n"),
        "fingerprint list": _write(tmp / "fp" / "bad.yaml", tiny + "fingerprint: [1, 2, 3]\n"),
        "display_name list": _write(tmp / "dn" / "bad.yaml", tiny.replace("Tiny NPU", "[a, b]")),
        "notes mapping": _write(tmp / "notes" / "bad.yaml", tiny.replace("a hand-written spec", "{a: 1}")),
        "huge number": _write(tmp / "huge" / "bad.yaml", tiny.replace("2.0e+10", "1" + "0" * 400)),
    }
    predict = ["predict", "mobilenet_v2", "--device"]
    return {
        "non-UTF-8 spec": ([*predict, str(specs["non-UTF-8 spec"])], "bad.yaml"),
        "model as --device": ([*predict, str(tmp / "model.onnx")], "model.onnx"),
        "fingerprint list": ([*predict, str(specs["fingerprint list"])], "bad.yaml: field 'fingerprint'"),
        "display_name list": (["devices", str(specs["display_name list"])], "bad.yaml: field 'display_name'"),
        "notes mapping": (["devices", str(specs["notes mapping"])], "bad.yaml: field 'notes'"),
        "huge number": (["devices", str(specs["huge number"])], "bad.yaml: field 'bandwidth_bytes_per_s'"),
        "spec is a folder": (["devices", str(tmp / "utf8") + "/"], "utf8"),
        "profile --threads 0": (["profile", "host", "--threads", "0"], "--threads"),
        "lut --runs -1": (["lut", "build", "mobilenet_v2", "--runs", "-1"], "--runs"),
        "sweep --max-ridge nan": (["sweep", "--max-ridge", "nan"], "--max-ridge"),
        "unknown flag": (["count", "mobilenet_v2", "--bogus"], "--bogus"),
        "bad --fuse choice": (["count", "mobilenet_v2", "--fuse", "sideways"], "--fuse"),
        "missing model": (["count"], "model"),
        "unknown command": (["frobnicate"], "frobnicate"),
        "search --precision": (["search", "--precision", "int7"], "--precision"),
        "figure format": (["plot", "roofline", "mobilenet_v2", "-o", str(tmp / "x.docx")], "x.docx"),
    }


_IDS = ["non-UTF-8 spec", "model as --device", "fingerprint list", "display_name list", "notes mapping", "huge number",
        "spec is a folder", "profile --threads 0", "lut --runs -1", "sweep --max-ridge nan", "unknown flag",
        "bad --fuse choice", "missing model", "unknown command", "search --precision", "figure format"]  # fmt: skip


@pytest.mark.parametrize("label", _IDS)
def test_replay_one_line_and_exit_2(label, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ROOFLINE_DEBUG", raising=False)
    argv, names = _cases(tmp_path)[label]
    assert main(argv) == 2, label
    err = capsys.readouterr().err
    line = _one_line(err)
    assert names in line and "Traceback" not in err, line
    # the same with the debug switch: the traceback instead, and still exit 2
    monkeypatch.setenv("ROOFLINE_DEBUG", "1")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and names in err, err


def test_argparse_errors_point_at_the_command_help(capsys):
    assert main(["count", "mobilenet_v2", "--fuse", "sideways"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.endswith("(see roofline count --help)"), line
    assert main(["predict", "mobilenet_v2", "--nope"]) == 2  # unrecognized: reported by the top parser
    assert _one_line(capsys.readouterr().err).endswith("(see roofline predict --help)")
    assert main(["--nope"]) == 2
    assert _one_line(capsys.readouterr().err).endswith("(see roofline --help)")


def test_debug_flag_anywhere_shows_the_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ROOFLINE_DEBUG", raising=False)
    spec = _write(tmp_path / "bad.yaml", TINY.format(name="bad") + "fingerprint: [1, 2, 3]\n")
    for argv in (["--debug", "devices", str(spec)], ["devices", str(spec), "--debug"], ["--debug", "count"]):
        assert main(argv) == 2, argv
        assert "Traceback (most recent call last)" in capsys.readouterr().err, argv
    monkeypatch.setenv("ROOFLINE_DEBUG", "0")  # off
    assert main(["devices", str(spec)]) == 2
    _one_line(capsys.readouterr().err)


def test_bugs_still_show_a_traceback(monkeypatch):
    import roofline.cli.predict

    def broken(*args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(roofline.cli.predict, "device_table", broken)
    with pytest.raises(ZeroDivisionError):
        main(["devices"])


def test_an_edited_spec_is_read_again(tmp_path):
    path = _write(tmp_path / "tiny.yaml", TINY.format(name="tiny"))
    assert roofline.load_device(path).notes == "a hand-written spec"
    _write(path, TINY.format(name="tiny").replace("a hand-written spec", "edited, and longer"))
    os.utime(path, ns=(1, 10**18))  # a new mtime even on a coarse clock
    assert roofline.load_device(path).notes == "edited, and longer"


def test_help_still_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["devices", "--help"])
    assert exc.value.code == 0 and "--debug" in capsys.readouterr().out


def test_runners_refuse_bad_threads():
    from roofline.profilers.runners.litert import LiteRtRunner
    from roofline.profilers.runners.onnxruntime import OrtRunner

    for runner in (OrtRunner, LiteRtRunner):
        for threads in (0, -2, 1.5, True, "4"):
            with pytest.raises(InvalidParameterError, match="'threads'"):
                runner(threads=threads)


def test_console_script_prints_one_line(tmp_path):
    exe = [sys.executable, "-c", "import sys; from roofline.cli import main; sys.exit(main())"]
    r = subprocess.run([*exe, "count", "--fuse", "x"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


# ---- the spec fuzz ------------------------------------------------------------------------------

VALUES = ["[1, 2, 3]", "{a: 1}", "'text'", "1.0e+400", "-5", ".nan", ".inf", "-.inf", "1" + "0" * 40, "0", "null",
          "true", "''", "[[1]]", "[]", "{}", "1e9", "-0.0", "2", "int8", "runtime", "weights", "!!binary AAAA",
          "2020-01-01", "0x10", "[{a: 1}]", "1.0e-320", "~", "'[1]'", "!!python/object:os.system x"]  # fmt: skip
_KEY_LINE = re.compile(rb"^(\s*(?:- )?[\w.-]+:)(.*)$")


def _mutate(text: bytes, rng: random.Random) -> bytes:
    if not text:
        return rng.choice(VALUES).encode()
    lines = text.split(b"\n")
    op = rng.choice(("flip", "truncate", "delete", "duplicate", "value", "value", "value", "item", "rename"))
    if op == "flip":
        data = bytearray(text)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if op == "truncate":
        return text[: rng.randrange(len(text))]
    i = rng.randrange(len(lines))
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op in ("value", "rename"):
        keyed = [j for j, line in enumerate(lines) if _KEY_LINE.match(line)]
        if not keyed:
            return text[::-1]
        j = rng.choice(keyed)
        key, _ = _KEY_LINE.match(lines[j]).groups()
        if op == "rename":
            lines[j] = key[:-2] + b":" + _KEY_LINE.match(lines[j]).group(2) if len(key.strip()) > 2 else lines[j]
        else:
            lines[j] = key + b" " + rng.choice(VALUES).encode()
    else:  # a list item
        items = [j for j, line in enumerate(lines) if line.lstrip().startswith(b"- ")]
        if items:
            j = rng.choice(items)
            lines[j] = lines[j][: lines[j].index(b"- ") + 2] + rng.choice(VALUES).encode()
    return b"\n".join(lines)


def mutants(seed: int = 0, n: int = 400):
    """``n`` (name, YAML bytes) pairs: the shipped and hand-written specs, each mutated 1 to 3 times."""
    rng = random.Random(seed)
    bases = [(p.stem, p.read_bytes()) for p in sorted(spec_dir().glob("*.yaml"))]
    bases += [(name, text.encode()) for name, text in HAND.items()]
    for _ in range(n):
        name, text = rng.choice(bases)
        for _ in range(rng.randint(1, 3)):
            text = _mutate(text, rng)
        yield name, text


def check_loaded(spec, table) -> None:
    """A loaded spec is well-formed, and predicts finite latencies or refuses with a RooflineError."""
    assert isinstance(spec.name, str) and isinstance(spec.display_name, str) and isinstance(spec.notes, str)
    assert spec.kind in KINDS and all(isinstance(s, str) for s in spec.sources)
    assert isinstance(spec.fingerprint, dict) and all(isinstance(k, str) for k in spec.fingerprint)
    for p in spec.precisions:
        assert 0 < spec.ridge(p) < math.inf
        assert spec.peak(p) is None or 0 < spec.peak(p) < math.inf
    try:
        pred = roofline.predict(table, [spec])
    except RooflineError:
        return
    column = "latency_mac_equiv" if pred.relative.all() else "latency_ms"
    assert all(0 <= x < math.inf for x in pred.totals[column]), pred.totals


@pytest.fixture(scope="module")
def mnv2_table():
    return roofline.count("mobilenet_v2", fuse="runtime")


def test_shipped_and_hand_written_specs_load(tmp_path, mnv2_table):
    for name, text in HAND.items():
        check_loaded(roofline.load_device(_write(tmp_path / f"{name}.yaml", text)), mnv2_table)
    for name in roofline.list_devices():
        check_loaded(roofline.load_device(name), mnv2_table)


def test_spec_fuzz_loads_or_raises_a_roofline_error(tmp_path, mnv2_table):
    outcomes: Counter = Counter()
    for i, (name, text) in enumerate(mutants(seed=14, n=500)):
        path = _write(tmp_path / str(i) / f"{name}.yaml", text)
        try:
            spec = roofline.load_device(path)
        except RooflineError:
            outcomes["refused"] += 1
            continue
        check_loaded(spec, mnv2_table)
        outcomes["loaded"] += 1
    assert outcomes["loaded"] > 50 and outcomes["refused"] > 50, outcomes  # the fuzz reaches both sides


def test_spec_fuzz_through_the_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ROOFLINE_DEBUG", raising=False)
    codes: Counter = Counter()
    for i, (name, text) in enumerate(mutants(seed=1414, n=80)):
        path = _write(tmp_path / str(i) / f"{name}.yaml", text)
        argv = ["devices", str(path)] if i % 4 else ["predict", "mobilenet_v2", "--device", str(path)]
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (0, 2), (argv, code, err)
        if code == 2:
            assert f"{name}.yaml" in _one_line(err), err
        else:
            assert not err.strip(), err
        codes[code] += 1
    assert codes[0] and codes[2], codes


def test_names_from_files_are_printed_not_interpreted_as_markup(tmp_path, capsys):
    # rich markup in a spec's display name (or a phone's model name) would crash or restyle the output
    spec = tmp_path / "markup.yaml"
    spec.write_text(
        "name: markup\ndisplay_name: 'Evil [/bold] [red]Phone'\nkind: cpu\ndefault_precision: int8\n"
        "ridge_macs_per_byte: {int8: 30.0}\nprovenance: datasheet\nsources: [a test]\n"
    )
    assert main(["devices", str(spec)]) == 0
    assert "Evil [/bold] [red]Phone" in capsys.readouterr().out
