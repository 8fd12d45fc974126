"""Run the Markdown docs: every console command and Python snippet, in order, as a reader would.

A document's fenced blocks run top to bottom in one scratch folder:

- ``console``: each ``$ command`` (``\\`` continues a line) runs in bash with this environment's
  ``roofline`` and ``python`` first on PATH (or those of ``$ROOFLINE_DOCS_BIN``: a plain
  ``pip install .`` checked by CI); it must exit 0. Lines after a command, up to the next
  ``$``, are its expected output: each must match a line it printed, ``…`` standing for any text
  (so a number the doc states is checked digit for digit, and a machine-dependent one is written ``…``).
- ``python``: run as a script by that ``python``, in the same folder (matplotlib without a display).
- Other blocks (yaml, csv, plain) are illustrations, not run.

An HTML comment right before a block (invisible on GitHub) changes that:

- ``<!-- docs-test: file NAME -->``: the block is a file the reader makes; it is written to NAME.
- ``<!-- docs-test: skip: REASON -->``: not run (say why: e.g. it installs, which CI itself does).

``substitutions`` replace text in commands and expected output before running (the phone section's
address and ``benchmark_model`` path become the loopback phone's).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARK = re.compile(r"<!--\s*docs-test:\s*(file|skip)\s*:?\s*(.*?)\s*-->")


@dataclass
class Block:
    doc: str
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    mark: tuple[str, str] | None = None  # ("file", name) or ("skip", reason)

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


@dataclass
class Command:
    command: str
    expected: list[str] = field(default_factory=list)


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with the docs-test mark just above each (if any)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        prev = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        mark = _MARK.search(prev)
        out.append(Block(path.name, start + 1, m.group(1), "\n".join(body) + "\n",
                         (mark.group(1), mark.group(2)) if mark else None))  # fmt: skip
        i += 1
    return out


def commands(text: str) -> list[Command]:
    """``$ command`` lines (with ``\\`` continuations) and the output lines after each."""
    out: list[Command] = []
    lines, i = text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            cmd = line[2:]
            while cmd.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd.rstrip()[:-1] + " " + lines[i].strip()
            out.append(Command(cmd))
        elif line.strip() and out:
            out[-1].expected.append(re.sub(r"\s{2,}# .*$", "", line).strip())  # "  # a note" is for the reader
        i += 1
    return out


def _pattern(expected: str) -> re.Pattern:
    return re.compile(".*?".join(re.escape(part) for part in expected.split("…")))


def _env() -> dict:
    bin_dir = os.environ.get("ROOFLINE_DOCS_BIN") or str(Path(sys.executable).parent)  # or a user's install
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "MPLBACKEND": "Agg",
            "COLUMNS": "200"}  # fmt: skip


def run_command(cmd: Command, cwd: Path, where: str, timeout: float = 900) -> str:
    r = subprocess.run(["bash", "-c", cmd.command], cwd=cwd, env=_env(), capture_output=True, text=True,
                       timeout=timeout)  # fmt: skip
    printed = r.stdout + r.stderr
    if r.returncode != 0:
        raise AssertionError(f"{where}: `{cmd.command}` exited {r.returncode}:\n{printed[-3000:]}")
    lines = [ln.strip() for ln in printed.splitlines()]
    for expected in cmd.expected:
        pattern = _pattern(expected)
        if not any(pattern.fullmatch(ln) for ln in lines):
            raise AssertionError(f"{where}: `{cmd.command}` did not print the documented line\n  {expected}\n"
                                 f"it printed:\n{printed[-3000:]}")  # fmt: skip
    return printed


def run_python(text: str, cwd: Path, where: str, timeout: float = 900) -> None:
    """A snippet as a reader runs it: a new ``python`` (the same as the commands'), in the scratch folder."""
    script = cwd / "_docs_snippet.py"
    script.write_text(text, encoding="utf-8")
    r = subprocess.run(["bash", "-c", f"python {script.name}"], cwd=cwd, env=_env(), capture_output=True,
                       text=True, timeout=timeout)  # fmt: skip
    script.unlink()
    if r.returncode != 0:
        raise AssertionError(f"{where}: the Python snippet failed:\n{(r.stdout + r.stderr)[-3000:]}")


def run_document(path: Path, cwd: Path, substitutions: dict[str, str] | None = None) -> list[str]:
    """Run every block of one document in ``cwd``; returns what ran (``doc:line lang``), for the record."""
    ran = []
    for block in blocks(path):
        text = block.text
        for old, new in (substitutions or {}).items():
            text = text.replace(old, new)
        if block.mark and block.mark[0] == "skip":
            continue
        if block.mark and block.mark[0] == "file":
            (cwd / block.mark[1]).write_text(text, encoding="utf-8")
            ran.append(f"{block.where} file {block.mark[1]}")
        elif block.lang == "console":
            for cmd in commands(text):
                run_command(cmd, cwd, block.where)
                ran.append(f"{block.where} $ {cmd.command}")
        elif block.lang == "python":
            run_python(text, cwd, block.where)
            ran.append(f"{block.where} python")
    return ran
