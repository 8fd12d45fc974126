"""The package's structure: no import circles (top-level or inside functions), the CLI's modules apart."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("roofline",)


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Every module each one imports (at the top or inside a function: a circle either way)."""
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
                other_names = len(submodules) < len(node.names)  # names the module itself defines
                targets = submodules + ([node.module] if other_names else [])
            # a package's own modules run after its __init__ anyway: importing its names is no circle
            deps |= {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
        graph[name] = deps
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert _circles(_imports(_modules())) == []


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_the_command_line_package_has_no_module_importing_another_but_common():
    graph = _imports(_modules())
    for name, deps in graph.items():
        if name.startswith("roofline.cli.") and name != "roofline.cli.main":
            assert {d for d in deps if d.startswith("roofline.cli")} <= {"roofline.cli.common"}, name


def test_the_test_fakes_stay_out_of_the_installed_packages():
    # the loopback phone and its benchmark_model live in tests/fakes; nothing installed imports them
    assert (ROOT / "tests" / "fakes" / "loopback_adb.py").is_file()
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        assert "LoopbackDevice" not in text and "from fakes" not in text and "import fakes" not in text, name


def _installed_files() -> list[str]:
    """The files of a plain (non-editable) install: the docs' install in CI, else this interpreter's."""
    import json
    import os
    import subprocess
    import sys

    import pytest

    bin_dir = os.environ.get("ROOFLINE_DOCS_BIN")
    python = str(Path(bin_dir) / "python") if bin_dir else sys.executable
    code = "import importlib.metadata as m, json; print(json.dumps([str(p) for p in m.files('roofline')]))"
    files = json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)
    if any(f.endswith(".pth") for f in files):
        pytest.skip("an editable install: its files are the checkout (CI checks a plain `pip install .`)")
    return files


def test_pip_install_puts_one_top_level_name_and_no_test_fakes():
    files = _installed_files()
    top = {Path(f).parts[0] for f in files if not f.startswith("..") and ".dist-info" not in f}
    assert top == {"roofline"}, top
    assert not [f for f in files if "fakes" in f or "loopback" in f or "standin" in f or f.startswith("tests")]
    for shipped in ("roofline/zoo/models.yaml", "roofline/profilers/runners/adb.py",
                    "roofline/_data/device_specs/pixel6_cpu.yaml", "roofline/_data/lut/README.md"):  # fmt: skip
        assert shipped in files, shipped


def test_no_module_grows_past_about_400_lines():
    # a module past this is two concepts: split it where the seam is (docs/contributing.md)
    long = {
        name: n for name, path in _modules().items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > 420
    }
    assert not long, long


def test_every_package_says_what_lives_in_it():
    for name, path in _modules().items():
        if path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            assert len(doc.split()) >= 15, f"{name}: its __init__ docstring should say what lives in the package"
