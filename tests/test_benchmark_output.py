"""Tests of roofline.profilers.benchmark_output on recorded-output fixtures of TFLite / LiteRT ``benchmark_model``.

Where the layout of each fixture in tests/data/benchmark_model/ comes from. The tables are formatted as
``tensorflow::StatsCalculator`` formats them (``"\\t"`` + right-aligned field, 3 decimals; percentages and cdf
from the rows' times; Summary by node type and Timings from the rows); the numbers themselves are made up.

- old_layout_stdout.txt (MobileNet v1 quant, builtin kernels): the Run Order table of the TF 1.x
  tensorflow/lite/tools/benchmark/README.md example (``[start]`` 9 wide, names ``[<tensor>]`` without node
  index), under the flags echo and summary lines of a recorded TF 2.8 run of mobilenet_v1_1.0_224.tflite on
  qemuriscv64 (meta-tensorflow-lite docs; no log prefix, ``Inference timings in us``, ``Memory footprint
  delta``). A composite: TF 1.x printed neither those summary lines nor the ``Operator-wise ...`` heading.
- new_layout_stdout.txt (MobileNet v1 fp32, ``--use_xnnpack=false``): LiteRT's tables
  (third_party/xla/xla/tsl/util/stats_calculator.cc: node type 40 wide, no ``[start]``; profile_summarizer.cc:
  ``[<outputs>]:<node index>``), with the ``INFO: `` prefixes and blocks of a recorded LiteRT run of
  efficientdet-lite0 on x86 (init block, then ``INFO: Operator-wise Profiling Info ...``).
- xnnpack_stdout.txt: that recorded efficientdet-lite0 run, trimmed to 24 rows and made fp32: XNNPACK's
  per-operator rows (DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT: type = XNNPACK operator, name
  ``Delegate/<op>:<k>``), k restarting in each of the partitions that RESIZE_NEAREST_NEIGHBOR splits, so rows
  of several partitions merge (times called 11, 12), builtin rows between. It has no TfLiteXNNPackDelegate row:
  XNNPACK sets kTfLiteDelegateFlagsPerOperatorProfiling, so its delegate node is not profiled as a whole.
- xnnpack_whole_delegate_stdout.txt: the whole-delegate row that TF 2.x printed before XNNPACK profiled its
  operators (larq/compute-engine#748, TF blog "Profiling XNNPACK with TFLite", 2022): one TfLiteXNNPackDelegate
  row named after the partition's outputs with the delegate node's index, here for an SSD whose custom
  TFLite_Detection_PostProcess stays on the CPU; TF 2.8 text form (``[start]`` 17 wide).
- gpu_delegate_stdout.txt: a recorded TF 2.x GPU run of mnv3_seg_float.tflite (tables, ``TfLiteGpuDelegateV2``
  row ``[Identity]:77``, init block with ModifyGraphWithDelegate) with the TF 2.8 flags echo and summary lines.
- profile.csv: what ``--op_profiling_output_mode=csv --op_profiling_output_file=...`` writes for the xnnpack
  run: ProfileSummaryCSVFormatter is StatsCalculator with format_as_csv (header ``node type, first, avg_ms, %,
  cdf%, mem KB, times called, name``, C++ default number format, node types unescaped, the names' commas
  replaced by tabs), both blocks as ProfileSummaryDefaultFormatter::HandleOutput writes them.
- no_summary.txt: a LiteRT run whose AllocateTensors fails (benchmark_tflite_model.cc "Failed to allocate
  tensors!", then benchmark_main.cc "Benchmarking failed.").
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from roofline.profilers.benchmark_output import OP_COLUMNS, map_ops_to_layers, parse_op_profile, parse_summary
from roofline.profilers.ort_trace import ParseError

DATA = Path(__file__).parent / "data" / "benchmark_model"


def read(name: str) -> str:
    return (DATA / name).read_text()


def tsl_row(node_type, first, avg, pct, cdf, times, name):
    """A Run Order row as LiteRT's StatsCalculator prints it (newer layout)."""
    return f"\t{node_type:>40}\t{first:9.3f}\t{avg:9.3f}\t{pct:7.3f}%\t{cdf:7.3f}%\t{0:10.3f}\t{times:9d}\t{name}"


TSL_HEADER = ("============================== Run Order ==============================\n"
              "\t                             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t"
              "[times called]\t[Name]")  # fmt: skip


# ------------------------------------------------------------------------------------------------ summary
SUMMARIES = {  # hand-read from the fixtures' timed count= line, Inference timings and memory lines
    "old_layout_stdout.txt": (50, 11515.4, 10831, 12002, 251, 11339, 3418, 14371, 11994.1, 11515.4, 4.21094, 9.76172),
    "new_layout_stdout.txt": (50, 33774.9, 31851, 35780, 690, 33867, 4287, 42229, 35470.3, 33774.9, 1.23047, 24.0273),
    "xnnpack_stdout.txt": (58, 14998.1, 14324, 15715, 270, 14852, 61204, 18746, 15494, 14998.1, 34.3594, 47.2031),
    "xnnpack_whole_delegate_stdout.txt": (50, 26360.2, 24691, 27584, 648, 26355, 97316, 32932, 27455.1, 26360.2, 31.1289,
                                          42.6484),
    "gpu_delegate_stdout.txt": (110, 8681.03, 7332, 10247, 544, 8332, 1451507, 11147, 8853.39, 8681.03, 63.4883, 63.4883),
}  # fmt: skip
KEYS = ["count", "avg_us", "min_us", "max_us", "std_us", "first_us", "init_us", "first_inference_us", "warmup_avg_us",
        "inference_avg_us", "memory_init_mb", "memory_overall_mb"]  # fmt: skip


@pytest.mark.parametrize("name", sorted(SUMMARIES))
def test_summary_of_every_stdout_fixture(name):
    s = parse_summary(read(name))
    assert {k: s[k] for k in KEYS} == dict(zip(KEYS, SUMMARIES[name]))
    assert isinstance(s["count"], int)


def test_the_timed_line_is_read_not_the_warmup_nor_the_profiles_own_timings():
    text = read("old_layout_stdout.txt")
    assert "count=31 first=14371" in text and "Timings (microseconds): count=50 first=13233" in text
    s = parse_summary(text)
    assert (s["count"], s["first_us"], s["avg_us"]) == (50, 11339, 11515.4)


REAL_TF28 = """Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=1 curr=3512391

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798

Inference timings in us: Init: 17187, First inference: 3512391, Warmup (avg): 3.51239e+06, Inference (avg): 2.95034e+06
"""  # recorded: TF 2.8 benchmark_model, mobilenet_v1_1.0_224.tflite on qemuriscv64 (one warm-up run)


def test_single_run_stat_and_exponent_numbers():
    s = parse_summary(REAL_TF28)
    assert (s["count"], s["avg_us"], s["min_us"], s["max_us"], s["std_us"]) == (50, 2950340.0, 2727568, 3189954, 109798)
    assert (s["warmup_avg_us"], s["inference_avg_us"], s["first_inference_us"]) == (3512390.0, 2950340.0, 3512391)
    assert "memory_init_mb" not in s  # the tool printed no memory line


def test_all_same_stat_and_logcat_prefixes():
    text = (
        "05-30 15:16:44.858  3380  3380 I tflite  : Running benchmark for at least 1 iterations and at least 0.5 "
        "seconds but terminate if exceeding 150 seconds.\n"
        "05-30 15:16:45.362  3380  3380 I tflite  : count=40 first=32942 curr=12594 min=11340 max=32942 avg=12581.9 std=3331\n"
        "05-30 15:16:45.362  3380  3380 I tflite  : Running benchmark for at least 50 iterations and at least 1 seconds "
        "but terminate if exceeding 150 seconds.\n"
        "05-30 15:16:46.365  3380  3380 I tflite  : count=75 curr=12000(all same)\n"
    )  # the Android benchmark app's logcat (TF issue #56301), timed line made all-same
    s = parse_summary(text)
    stats = [s[k] for k in ["count", "avg_us", "min_us", "max_us", "std_us", "first_us"]]
    assert stats == [75, 12000, 12000, 12000, 0, 12000]
    assert math.isnan(s["init_us"]) and math.isnan(s["inference_avg_us"])  # no Inference timings line


def test_older_and_peak_memory_lines():
    text = REAL_TF28 + (
        "Peak memory footprint (MB): init=63.4883 overall=63.4883\n"  # TF 2.3/2.4 wording (a recorded GPU run)
        "Overall peak memory footprint (MB) via periodic monitoring: 40.1211\n"
    )
    s = parse_summary(text)
    assert (s["memory_init_mb"], s["memory_overall_mb"], s["memory_peak_mb"]) == (63.4883, 63.4883, 40.1211)


def test_only_the_inference_timings_line():
    s = parse_summary("INFO: Inference timings in us: Init: 530, First inference: 124020, Warmup (avg): 117225, "
                      "Inference (avg): 116066\n")  # fmt: skip
    assert s["count"] is None and s["avg_us"] == 116066 and math.isnan(s["min_us"]) and math.isnan(s["first_us"])


# ------------------------------------------------------------------------------------- summary: errors
def test_a_failed_run_has_no_summary_and_the_error_quotes_its_last_line():
    with pytest.raises(ParseError, match=r"no benchmark summary in the output \(last line: 'ERROR: Benchmarking fa"):
        parse_summary(read("no_summary.txt"))


def test_a_run_that_died_after_the_warmup_has_no_timed_line():
    text = read("new_layout_stdout.txt").split("INFO: Running benchmark for at least 50")[0] + "Killed\n"
    with pytest.raises(ParseError, match=r"\(last line: 'Killed'\)"):
        parse_summary(text)


def test_the_csv_file_has_no_summary():
    with pytest.raises(ParseError, match=r"last line: '24 nodes observed'"):
        parse_summary(read("profile.csv"))


@pytest.mark.parametrize("text", ["", "\n  \n\t\n"])
def test_empty_output(text):
    with pytest.raises(ParseError, match="no benchmark summary in the output: it is empty"):
        parse_summary(text)


def test_long_last_line_is_cut_to_100_characters():
    with pytest.raises(ParseError) as e:
        parse_summary("STARTING!\n" + "x" * 300 + "\n")
    assert "x" * 100 + "'" in str(e.value) and "x" * 101 not in str(e.value)


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ("avg=11515.4 std=251", "avg=11x515.4 std=251"),
        ("curr=11568 min=10831", "curr=11568 min="),
        ("count=50 first=11339", "count=5O first=11339"),
        ("Inference (avg): 11515.4", "Inference (avg): n/a"),
        ("overall=9.76172", "overall=9.76172MB"),
    ],
)
def test_a_corrupted_summary_number_is_an_error_quoting_the_line(good, bad):
    text = read("old_layout_stdout.txt")
    assert good in text
    line = next(ln for ln in text.splitlines() if good in ln).replace(good, bad)
    with pytest.raises(ParseError) as e:
        parse_summary(text.replace(good, bad))
    assert repr(line) in str(e.value)


# --------------------------------------------------------------------------------------------- op profiles
def test_old_layout_ops():
    ops = parse_op_profile(read("old_layout_stdout.txt"))
    assert list(ops.columns) == OP_COLUMNS and len(ops) == 31  # Run Order only: not Top by Computation Time
    first = ops.iloc[0]
    assert (first.op_type, first["name"], first.start_ms, first.first_ms, first.time_ms) == (
        "CONV_2D", "MobilenetV1/MobilenetV1/Conv2d_0/Relu6", 0.0, 0.496, 0.456)  # fmt: skip
    assert (first.percent, first.cdf_percent, first.mem_kb, first.times_called) == (4.023, 4.023, 0.0, 1)
    assert ops.iloc[-1][["op_type", "name", "start_ms", "cdf_percent"]].tolist() == [
        "SOFTMAX", "MobilenetV1/Predictions/Reshape_1", 11.345, 100.0]  # fmt: skip
    assert ops["op_type"].value_counts().to_dict() == {"CONV_2D": 15, "DEPTHWISE_CONV_2D": 13, "AVERAGE_POOL_2D": 1,
                                                         "RESHAPE": 1, "SOFTMAX": 1}  # fmt: skip
    assert (ops["node_index"] == -1).all() and not ops["aggregated"].any() and not ops["delegate"].any()
    assert ops["percent"].sum() == pytest.approx(100, abs=0.01)
    assert ops["times_called"].dtype.kind == "i" and ops["node_index"].dtype.kind == "i"


def test_new_layout_ops_skip_the_initialization_block():
    text = read("new_layout_stdout.txt")
    assert "AllocateTensors/0" in text
    ops = parse_op_profile(text)
    assert len(ops) == 31 and ops["start_ms"].isna().all() and "AllocateTensors" not in set(ops["op_type"])
    assert ops["node_index"].tolist() == list(range(31))
    assert ops.iloc[0][["op_type", "name", "first_ms", "time_ms", "percent"]].tolist() == [
        "CONV_2D", "MobilenetV1/MobilenetV1/Conv2d_0/Relu6", 1.268, 1.232, 3.718]  # fmt: skip
    squeeze = ops.iloc[29]
    assert (squeeze.op_type, squeeze["name"], squeeze.time_ms) == (
        "SQUEEZE",
        "MobilenetV1/Logits/SpatialSqueeze",
        0.01,
    )
    assert not ops["aggregated"].any() and not ops["delegate"].any()


def test_xnnpack_per_operator_rows_are_aggregated():
    ops = parse_op_profile(read("xnnpack_stdout.txt"))
    assert len(ops) == 24
    first = ops.iloc[0]
    assert (first.op_type, first["name"], first.node_index, first.time_ms, first.times_called) == (
        "Convolution (NHWC, F32) IGEMM", "Delegate/Convolution (NHWC, F32) IGEMM:0", -1, 1.213, 1)  # fmt: skip
    assert first.aggregated and not first.delegate
    assert ops.iloc[1][["op_type", "times_called", "time_ms", "percent"]].tolist() == [
        "Convolution (NHWC, F32) DWConv", 11, 0.122, 9.070]  # fmt: skip
    delegated = ops["name"].str.startswith("Delegate/")
    assert delegated.sum() == 20 and ops.loc[delegated, "aggregated"].all()
    assert (ops.loc[delegated, "node_index"] == -1).all()
    builtin = ops[~delegated]
    assert builtin["op_type"].tolist() == ["RESIZE_NEAREST_NEIGHBOR"] * 2 + ["TFLite_Detection_PostProcess",
                                                                             "RESIZE_NEAREST_NEIGHBOR"]  # fmt: skip
    assert builtin["node_index"].tolist() == [66, 70, 266, 101] and not builtin["aggregated"].any()
    assert builtin.iloc[2]["name"] == ("StatefulPartitionedCall:3, StatefulPartitionedCall:2, "
                                       "StatefulPartitionedCall:1, StatefulPartitionedCall:0")  # fmt: skip
    assert ops["times_called"].max() == 12 and not ops["delegate"].any()


def test_whole_delegate_rows():
    ops = parse_op_profile(read("xnnpack_whole_delegate_stdout.txt"))
    assert ops[["op_type", "node_index", "delegate", "aggregated", "start_ms", "time_ms"]].values.tolist() == [
        ["TfLiteXNNPackDelegate", 64, True, False, 0.0, 24.866],
        ["TFLite_Detection_PostProcess", 63, False, False, 24.867, 1.218],
    ]
    assert ops.iloc[0]["name"] == "raw_outputs/box_encodings, raw_outputs/class_predictions"
    assert ops.iloc[1]["name"].endswith("TFLite_Detection_PostProcess:3")


def test_gpu_delegate_row():
    ops = parse_op_profile(read("gpu_delegate_stdout.txt"))
    columns = ["op_type", "name", "node_index", "first_ms", "time_ms", "percent", "delegate", "aggregated"]
    assert ops[columns].values.tolist() == [["TfLiteGpuDelegateV2", "Identity", 77, 8.317, 8.671, 100.0, True, False]]


def test_csv_mode():
    ops = parse_op_profile(read("profile.csv"))
    assert list(ops.columns) == OP_COLUMNS and len(ops) == 24 and ops["start_ms"].isna().all()
    first = ops.iloc[0][["op_type", "first_ms", "time_ms", "percent", "cdf_percent", "mem_kb", "times_called"]]
    assert first.tolist() == ["Convolution (NHWC, F32) IGEMM", 1.345, 1.23571, 7.99736, 7.99736, 0.0, 1]
    assert ops.iloc[0]["name"] == "Delegate/Convolution (NHWC, F32) IGEMM:0"  # the CSV's tab back to a comma
    post = ops[ops["op_type"] == "TFLite_Detection_PostProcess"].iloc[0]
    assert (post.node_index, post.time_ms) == (266, 3.82715)
    assert post["name"] == ", ".join(f"StatefulPartitionedCall:{k}" for k in (3, 2, 1, 0))
    stdout = parse_op_profile(read("xnnpack_stdout.txt"))  # the same model and tool in stdout mode
    for col in ["op_type", "name", "node_index", "times_called", "aggregated", "delegate"]:
        assert ops[col].tolist() == stdout[col].tolist()


def test_older_csv_header_with_start_and_unspaced_csv():
    older = ("Operator-wise Profiling Info for Regular Benchmark Runs:\n"
             "============================== Run Order ==============================\n"
             "node type, start, first, avg_ms, %, cdf%, mem KB, times called, name\n"
             "CONV_2D, 0.012, 0.53, 0.4961, 60.2%, 60.2%, 0, 1, [conv1/Relu]:0\n"
             "ADD, 0.51, 0.33, 0.328, 39.8%, 100%, 0, 1, [add]:1\n\n")  # fmt: skip
    ops = parse_op_profile(older)
    rows = ops[["op_type", "start_ms", "time_ms", "name", "node_index"]].values.tolist()
    assert rows == [["CONV_2D", 0.012, 0.4961, "conv1/Relu", 0], ["ADD", 0.51, 0.328, "add", 1]]
    bare = 'node type,first,avg_ms,%,cdf%,mem KB,times called,name\nMEAN,0.004,0.003,100%,100%,0,1,"[t12]:4"\n'
    assert parse_op_profile(bare)[["op_type", "name", "node_index"]].values.tolist() == [["MEAN", "t12", 4]]


REAL_SPACED = """INFO: Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
                                     [node type]          [first]        [avg ms]            [%]          [cdf%]          [mem KB]        [times called]  [Name]
                                        QUANTIZE            0.199           0.203         1.328%          1.328%             0.000                1       [tfl.quantize]:0
                   Convolution (NHWC, QC8) IGEMM            0.398           0.407         2.658%          3.986%             0.000                1       Delegate/Convolution (NHWC, QC8) IGEMM:0
                  Convolution (NHWC, QC8) DWConv            0.428           0.051         4.317%          8.304%             0.000               13       Delegate/Convolution (NHWC, QC8) DWConv:1
                    TFLite_Detection_PostProcess            3.894           3.653        23.862%         83.962%             0.000                1       [StatefulPartitionedCall:3, StatefulPartitionedCall:2, StatefulPartitionedCall:1, StatefulPartitionedCall:0]:266

"""  # recorded rows of a LiteRT efficientdet-lite0 (int8) run on x86, as pasted into a document (tabs expanded)


def test_space_aligned_rows_as_pasted_from_a_terminal():
    ops = parse_op_profile(REAL_SPACED)
    assert ops["op_type"].tolist() == ["QUANTIZE", "Convolution (NHWC, QC8) IGEMM", "Convolution (NHWC, QC8) DWConv",
                                         "TFLite_Detection_PostProcess"]  # fmt: skip
    assert ops["times_called"].tolist() == [1, 1, 13, 1] and ops["node_index"].tolist() == [0, -1, -1, 266]
    assert ops["aggregated"].tolist() == [False, True, True, False]
    assert ops["name"].tolist()[:3] == ["tfl.quantize", "Delegate/Convolution (NHWC, QC8) IGEMM:0",
                                        "Delegate/Convolution (NHWC, QC8) DWConv:1"]  # fmt: skip


def test_tf1_tables_without_headings():
    text = read("old_layout_stdout.txt").replace("Operator-wise Profiling Info for Regular Benchmark Runs:\n", "")
    assert len(parse_op_profile(text)) == 31


def test_old_delegate_node_type():
    text = ("============================== Run Order ==============================\n"
            "\t             [node type]\t  [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t"
            "[times called]\t[Name]\n"
            "\t                DELEGATE\t    0.000\t   21.227\t   21.287\t 91.329%\t 91.329%\t     0.000\t        1\t"
            "[cudnn_lstm/rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell/BiasAdd]\n")  # fmt: skip
    # a TF 1.14 row (mozilla/DeepSpeech#2270): the delegate node type was "DELEGATE"
    ops = parse_op_profile(text)
    assert ops["delegate"].tolist() == [True] and ops["node_index"].tolist() == [-1]


# ---------------------------------------------------------------------------------------- op profile errors
def test_a_garbled_row_is_an_error_quoting_the_row():
    text = read("old_layout_stdout.txt")
    row = next(ln for ln in text.splitlines() if "Conv2d_1_depthwise" in ln)
    bad = row.replace("0.387", "0.3#7")
    with pytest.raises(ParseError) as e:
        parse_op_profile(text.replace(row, bad, 1))
    assert f"cannot read op profile row {bad.strip()!r}" in str(e.value)


@pytest.mark.parametrize(
    "bad",
    [
        "\t  CONV_2D\t    0.496\t    0.456\t  4.023%\t  4.023%\t        1\t[x]:0",  # a column missing
        "\t  CONV_2D\t    0.496\t    0.456\t  4.023\t  4.023\t     0.000\t        1\t[x]:0",  # no % signs
        "\t  CONV_2D\t    0.496\t    0.456\t  4.023%\t  4.023%\t     0.000\t      1.5\t[x]:0",  # times called
        "\t  CONV_2D\t    0.496\t    0.456\t  4.023%\t  4.023%\t     0.000\t        1",  # no name
        "Segmentation fault",
    ],
)
def test_unreadable_new_layout_rows(bad):
    text = read("new_layout_stdout.txt")
    row = next(ln for ln in text.splitlines() if "Conv2d_1_depthwise" in ln)
    with pytest.raises(ParseError, match="cannot read op profile row") as e:
        parse_op_profile(text.replace(row, bad, 1))
    assert repr(bad.strip()) in str(e.value)


def test_a_garbled_csv_row():
    text = read("profile.csv").replace("0, 11, Delegate/Convolution (NHWC\t F32) DWConv:1", "0, eleven, x", 1)
    with pytest.raises(ParseError, match=r"cannot read op profile row 'Convolution \(NHWC, F32\) DWConv, .*eleven, x'"):
        parse_op_profile(text)


@pytest.mark.parametrize("text", ["", "STARTING!\nLoaded model m.tflite\n"])
def test_no_table(text):
    with pytest.raises(ParseError, match="no op profile table in the output"):
        parse_op_profile(text)


def test_no_table_in_the_failed_run_nor_a_run_without_profiling():
    with pytest.raises(ParseError, match="no op profile table"):
        parse_op_profile(read("no_summary.txt"))
    with pytest.raises(ParseError, match="no op profile table"):
        parse_op_profile(REAL_TF28)


def test_only_the_initialization_profile():
    text = read("gpu_delegate_stdout.txt").split("Operator-wise")[0]
    with pytest.raises(ParseError, match="initialization only"):
        parse_op_profile(text)


def test_a_table_without_rows_and_an_unknown_header():
    with pytest.raises(ParseError, match="has no rows"):
        parse_op_profile(TSL_HEADER + "\n\n")
    header = "\t[node type]\t[first]\t[avg ms]\t[Name]"
    with pytest.raises(ParseError, match="unknown op profile header") as e:
        parse_op_profile(header + "\n")
    assert repr(header.strip()) in str(e.value)


# ---------------------------------------------------------------------------------------------- mapping
EXAMPLE_TENSORS = ["t3", "t6", "t9", "t10", "t12", "t15", "t16"]
EXAMPLE_TYPES = ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
EXAMPLE_AVG = [0.412, 0.154, 0.203, 0.031, 0.027, 0.019, 0.008]


@pytest.fixture(scope="module")
def example():
    pytest.importorskip("ai_edge_litert")
    import roofline
    from roofline.profilers.tflite_writer import example_network

    table = roofline.count(example_network("fp32"), fuse="none")
    assert table["name"].tolist() == ["conv_2d_0:t3", "depthwise_conv_2d_1:t6", "conv_2d_2:t9", "add_3:t10",
                                      "mean_4:t12", "fully_connected_5:t15", "softmax_6:t16"]  # fmt: skip
    return table


def example_profile(names=None, types=EXAMPLE_TYPES, times=None):
    total, cdf, rows = sum(EXAMPLE_AVG), 0.0, []
    for k, (t, avg) in enumerate(zip(types, EXAMPLE_AVG)):
        cdf += avg / total * 100
        name = names[k] if names else f"[{EXAMPLE_TENSORS[k]}]:{k}"
        rows.append(tsl_row(t, avg * 1.1, avg, avg / total * 100, cdf, times[k] if times else 1, name))
    heading = "INFO: Operator-wise Profiling Info for Regular Benchmark Runs:\n"
    return heading + TSL_HEADER + "\n" + "\n".join(rows) + "\n\n"


def test_map_by_node_index(example):
    ops = parse_op_profile(example_profile())
    assert ops["node_index"].tolist() == list(range(7))
    layers, unmapped = map_ops_to_layers(ops, example)
    assert unmapped.empty and layers["measured_ms"].tolist() == EXAMPLE_AVG
    assert layers.drop(columns="measured_ms").equals(example) and "measured_ms" not in example.columns


def test_map_by_output_tensor_in_the_older_layout(example):
    ops = parse_op_profile(example_profile(names=[f"[{t}]" for t in EXAMPLE_TENSORS]))
    assert (ops["node_index"] == -1).all()
    layers, unmapped = map_ops_to_layers(ops, example)
    assert unmapped.empty and layers["measured_ms"].tolist() == EXAMPLE_AVG


def test_xnnpack_aggregated_rows_stay_unmapped(example):
    xnn = ["Convolution (NHWC, F32) IGEMM", "Convolution (NHWC, F32) DWConv", "Convolution (NHWC, F32) GEMM",
           "Add (ND, F32)", "Mean (ND, F32)", "Fully Connected (NC, F32) GEMM", "SoftMax (NC, F32)"]  # fmt: skip
    ops = parse_op_profile(example_profile(names=[f"Delegate/{t}:{k}" for k, t in enumerate(xnn)], types=xnn))
    layers, unmapped = map_ops_to_layers(ops, example)
    assert layers["measured_ms"].isna().all()
    assert (
        len(unmapped) == 7
        and (unmapped["reason"] == "aggregated").all()
        and unmapped["time_ms"].tolist() == EXAMPLE_AVG
    )


def test_delegate_merged_and_unknown_rows_are_reported(example):
    ops = parse_op_profile(example_profile(times=[1, 1, 1, 1, 3, 1, 1]))  # MEAN called 3 times a run
    ops.loc[5, "name"] = "t99"  # FULLY_CONNECTED: output tensor not in this model
    gpu = pd.DataFrame([["t16", "TfLiteGpuDelegateV2", 1.0, 1.0, np.nan, 100.0, 100.0, 0.0, 1, 7, False, True]],
                       columns=OP_COLUMNS)  # fmt: skip
    layers, unmapped = map_ops_to_layers(pd.concat([ops, gpu], ignore_index=True), example)
    assert unmapped[["op_type", "reason"]].values.tolist() == [
        ["MEAN", "aggregated"],
        ["FULLY_CONNECTED", "no layer"],
        ["TfLiteGpuDelegateV2", "delegate"],
    ]
    assert layers["measured_ms"].isna().tolist() == [False, False, False, False, True, True, False]


def test_ops_on_a_fused_layer_add_up():
    table = pd.DataFrame(
        {"name": ["conv_2d_0:t3", "add_1:t4"], "nodes": [("conv_2d_0:t3",), ("add_1:t4", "relu_2:t5")]}
    )
    text = ("Operator-wise Profiling Info for Regular Benchmark Runs:\n" + TSL_HEADER + "\n"
            + tsl_row("CONV_2D", 0.5, 0.5, 50, 50, 1, "[t3]:0") + "\n" + tsl_row("ADD", 0.3, 0.3, 30, 80, 1, "[t4]:1")
            + "\n" + tsl_row("RELU", 0.2, 0.2, 20, 100, 1, "[t5]:2") + "\n")  # fmt: skip
    layers, unmapped = map_ops_to_layers(parse_op_profile(text), table)
    assert unmapped.empty and layers["measured_ms"].tolist() == pytest.approx([0.5, 0.5])
