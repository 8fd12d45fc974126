"""The loopback test phone's ``benchmark_model``: runs a ``.tflite`` with LiteRT on this host and prints
what TFLite's ``benchmark_model`` prints (newer layout: no ``[start]`` column, ``:<node index>`` names).

Flags read: ``--graph``, ``--num_threads``, ``--warmup_runs``, ``--num_runs``, ``--min_secs``,
``--use_xnnpack``, ``--enable_op_profiling``, ``--op_profiling_output_mode`` (stdout or csv),
``--op_profiling_output_file``; ``--use_gpu``/``--use_nnapi``/``--use_hexagon`` fail as on a phone
without that accelerator. Per-op rows are real timings: each operator is cut out of the model into a
one-operator model and timed alone.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _flags(argv: list[str]) -> dict[str, str]:
    out = {}
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            raise SystemExit(f"ERROR: unrecognised argument {arg!r}")
        key, _, value = arg[2:].partition("=")
        out[key] = value
    return out


def _interpreter(data: bytes, threads: int, xnnpack: bool):
    from ai_edge_litert import interpreter as lite

    kind = lite.OpResolverType.AUTO if xnnpack else lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = lite.Interpreter(model_content=data, num_threads=threads, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        dtype = np.dtype(d["dtype"])
        value = rng.standard_normal(d["shape"]) if dtype.kind == "f" else rng.integers(-64, 64, d["shape"])
        it.set_tensor(d["index"], value.astype(dtype))
    return it


def _time(it, runs: int, min_secs: float) -> list[float]:
    times, start = [], time.perf_counter()
    while len(times) < runs or time.perf_counter() - start < min_secs:
        t = time.perf_counter()
        it.invoke()
        times.append((time.perf_counter() - t) * 1e6)
        if time.perf_counter() - start > 150:
            break
    return times


def _count_line(times: list[float]) -> str:
    t = np.asarray(times)
    return (f"count={len(t)} first={int(t[0])} curr={int(t[-1])} min={int(t.min())} max={int(t.max())} "
            f"avg={t.mean():g} std={int(t.std())}")  # fmt: skip


def _single_ops(data: bytes) -> list[tuple[str, str, bytes]]:
    """(op type, output tensor name, one-operator model) for each operator of the first subgraph."""
    import copy

    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    sub = model.subgraphs[0]
    out = []
    for op in sub.operators:
        code = model.operatorCodes[op.opcodeIndex]
        one = copy.copy(model)
        piece = copy.copy(sub)
        piece.operators = [op]
        consts = {i for i, t in enumerate(sub.tensors) if model.buffers[t.buffer].data is not None}
        piece.inputs = [i for i in op.inputs if i >= 0 and i not in consts]
        piece.outputs = list(op.outputs)
        one.subgraphs, one.signatureDefs = [piece], None
        b = flatbuffers.Builder(1024)
        b.Finish(one.Pack(b), file_identifier=b"TFL3")
        name = sub.tensors[op.outputs[0]].name
        name = name.decode() if isinstance(name, bytes) else name
        out.append((names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM"), name, bytes(b.Output())))
    return out


def _op_rows(data: bytes, threads: int, xnnpack: bool, runs: int) -> list[tuple[str, float, float, str]]:
    rows = []
    for index, (kind, name, piece) in enumerate(_single_ops(data)):
        times = _time(_interpreter(piece, threads, xnnpack), runs, 0.0)
        rows.append((kind, times[0] / 1e3, float(np.mean(times)) / 1e3, f"[{name}]:{index}"))
    return rows


def _table(title: str, rows) -> str:
    total = sum(r[2] for r in rows) or 1.0
    header = "\t".join(["", "             [node type]", "  [first]", " [avg ms]", "     [%]", "  [cdf%]", "  [mem KB]",
                        "[times called]", "[Name]"])  # fmt: skip
    lines = [f"============================== {title} ==============================", header]
    cdf = 0.0
    for kind, first, avg, name in rows:
        cdf += avg / total * 100
        lines.append(f"\t{kind:>24}\t{first:9.3f}\t{avg:9.3f}\t{avg / total * 100:7.3f}%\t{cdf:7.3f}%\t"
                     f"{0.0:10.3f}\t{1:9d}\t{name}")  # fmt: skip
    return "\n".join(lines)


def _csv(rows) -> str:
    total = sum(r[2] for r in rows) or 1.0
    lines = ["node type, first, avg_ms, %, cdf%, mem KB, times called, name"]  # as the real tool writes it
    cdf = 0.0
    for kind, first, avg, name in rows:
        cdf += avg / total * 100
        fields = [
            kind,
            f"{first:g}",
            f"{avg:g}",
            f"{avg / total * 100:g}%",
            f"{cdf:g}%",
            "0",
            "1",
            name.replace(",", "\t"),
        ]
        lines.append(", ".join(fields))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    flags = _flags(sys.argv[1:] if argv is None else argv)
    print("INFO: STARTING!\nINFO: Log parameter values verbosely: [0]")
    for flag in ("use_gpu", "use_nnapi", "use_hexagon"):
        if flags.get(flag) in ("true", "1"):
            print(f"ERROR: {flag.removeprefix('use_')} delegate is not supported on this device.")
            print("ERROR: Failed to apply delegate.\nERROR: Benchmarking failed.")
            return 1
    graph = flags.get("graph")
    if not graph or not Path(graph).is_file():
        print(f"ERROR: File {graph} does not exist\nERROR: Benchmarking failed.")
        return 1
    threads = int(flags.get("num_threads", "-1"))
    threads = threads if threads > 0 else 1
    xnnpack = flags.get("use_xnnpack", "true") not in ("false", "0")
    profiling = flags.get("enable_op_profiling", "false") in ("true", "1")
    print(f"INFO: Num threads: [{threads}]\nINFO: Graph: [{graph}]")
    if profiling:
        print("INFO: Enable op profiling: [1]")
    data = Path(graph).read_bytes()
    print(f"INFO: Loaded model {graph}\nINFO: The input model file size (MB): {len(data) / 1e6:g}")
    t = time.perf_counter()
    try:
        it = _interpreter(data, threads, xnnpack)
    except (ValueError, RuntimeError) as exc:
        print(f"ERROR: {str(exc).splitlines()[0] if str(exc) else exc!r}\nERROR: Failed to allocate tensors!")
        print("ERROR: Benchmarking failed.")
        return 1
    init_us = (time.perf_counter() - t) * 1e6
    print(f"INFO: Initialized session in {init_us / 1e3:.3f}ms.")
    warmup_runs, runs = int(flags.get("warmup_runs", "1")), int(flags.get("num_runs", "50"))
    min_secs = float(flags.get("min_secs", "1"))
    print(f"INFO: Running benchmark for at least {warmup_runs} iterations and at least 0.5 seconds but terminate "
          "if exceeding 150 seconds.")  # fmt: skip
    warm = _time(it, warmup_runs, float(flags.get("warmup_min_secs", "0.5")))
    print(f"INFO: {_count_line(warm)}\n")
    print(f"INFO: Running benchmark for at least {runs} iterations and at least {min_secs:g} seconds but terminate "
          "if exceeding 150 seconds.")  # fmt: skip
    timed = _time(it, runs, min_secs)
    print(f"INFO: {_count_line(timed)}\n")
    print(f"INFO: Inference timings in us: Init: {int(init_us)}, First inference: {int(warm[0])}, "
          f"Warmup (avg): {np.mean(warm):g}, Inference (avg): {np.mean(timed):g}")  # fmt: skip
    print("INFO: Memory footprint delta from the start of the tool (MB): init=0 overall=0")
    if profiling:
        rows = _op_rows(data, threads, xnnpack, max(5, min(runs, 20)))
        if flags.get("op_profiling_output_mode", "stdout") == "csv":
            Path(flags["op_profiling_output_file"]).write_text(_csv(rows))
        else:
            print("Operator-wise Profiling Info for Regular Benchmark Runs:")
            print(_table("Run Order", rows))
            print(f"\nNumber of nodes executed: {len(rows)}")
            print(
                f"Timings (microseconds): {_count_line(timed)}\nMemory (bytes): count=0\n{len(rows)} nodes observed\n"
            )
    return 0
