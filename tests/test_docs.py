"""The docs run: every console command and Python snippet of README.md and docs/*.md, as written.

Each document runs top to bottom in a scratch folder (``tests/docs_runner.py`` says how blocks are
read); the README's phone section runs against the loopback phone. A command that fails, or prints
other than the output the doc shows, fails its document's test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_runner import blocks, commands, run_document
from fakes.loopback_adb import LoopbackDevice, write_benchmark_standin

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "lut" / "README.md"]


@pytest.fixture
def reader(tmp_path, home):
    """A new user's home (no adb key, no remembered phones: conftest.py) and an empty working folder."""
    work = tmp_path / "work"
    work.mkdir()
    return work


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_documented_command_and_snippet_runs(doc, reader, tmp_path):
    with LoopbackDevice(tmp_path / "phone") as phone:  # the README's phone, on loopback
        binary = write_benchmark_standin(tmp_path / "android_aarch64_benchmark_model")
        subs = {
            "192.168.1.20:5555": phone.address,
            "~/Downloads/android_aarch64_benchmark_model": str(binary),
            "<serial>": "LOOPBACK0001",
            "--affinity f0": "--affinity 1",
        }  # its serial; 2 cores, not 8
        ran = run_document(doc, reader, subs)
    runnable = [b for b in blocks(doc) if b.lang in ("console", "python") and not (b.mark and b.mark[0] == "skip")]
    assert len([r for r in ran if " $ " in r or r.endswith("python")]) == sum(
        len(commands(b.text)) if b.lang == "console" else 1 for b in runnable
    )


def test_the_runner_fails_on_a_broken_command_and_on_a_wrong_number(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("```console\n$ roofline zoo list\n```\n\n```console\n$ roofline count no_such.onnx\n```\n")
    with pytest.raises(AssertionError, match=r"doc.md:5: `roofline count no_such.onnx` exited 2"):
        run_document(doc, tmp_path)
    doc.write_text("```console\n$ echo 'total: 300.8 M MACs'\ntotal: 300.7 M MACs\n```\n")
    with pytest.raises(AssertionError, match="did not print the documented line"):
        run_document(doc, tmp_path)
    doc.write_text("```console\n$ echo 'total: 300.8 M MACs'\ntotal: … M MACs   # machine-dependent\n```\n")
    assert run_document(doc, tmp_path) == ["doc.md:1 $ echo 'total: 300.8 M MACs'"]
    doc.write_text("```python\nimport roofline\n\nroofline.no_such_thing\n```\n")
    with pytest.raises(AssertionError, match="(?s)doc.md:1: the Python snippet failed:.*no attribute 'no_such_thing'"):
        run_document(doc, tmp_path)


def test_the_readme_s_counts_of_counting_rules_are_current():
    import re

    from onnx import defs

    import roofline

    text = (ROOT / "README.md").read_text()
    m = re.search(r"\((\d+) ONNX op types, (\d+) TFLite-only ones; every one of the (\d+) builtin", text)
    assert m, "README's sentence on counting rules moved: update this test"
    onnx_ops = {s.name for s in defs.get_all_schemas_with_history()}
    ops = roofline.supported_ops()
    from ai_edge_litert import schema_py_generated as schema

    builtins = [k for k in vars(schema.BuiltinOperator) if not k.startswith("_")]
    assert [int(g) for g in m.groups()] == [
        sum(o in onnx_ops for o in ops),
        sum(o.startswith("TFLITE_") for o in ops),
        len(builtins),
    ]
