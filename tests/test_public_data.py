"""Shipped public latency data (lut/) and the NAS-Bench-201 network builder."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

import roofline
from roofline.errors import ShapeError
from roofline.public import LUT_DIR, list_public, load_layers, load_public, public_meta, write_public
from roofline.public.importers import (
    import_coral_benchmarks,
    import_help_nasbench201,
    import_hw_nas_bench,
    import_mnv4_table6,
    import_qai_hub,
)
from roofline.public.nasbench201 import DATASETS, arch_costs, build_nasbench201, parse_arch
from roofline.zoo import list_models

DATASETS_SHIPPED = ["coral_edgetpu", "mobilenetv4_table6", "nasbench201_help", "published_latencies", "qai_hub"]
ARCH_9930 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ARCHS = [
    ARCH_9930,
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
]


def test_reference_networks_have_torchvision_s_macs():
    from roofline.public.reference_nets import resnet50, vgg16

    assert roofline.totals(roofline.count(resnet50(224)))["macs"] == pytest.approx(4.09e9, rel=0.005)
    assert roofline.totals(roofline.count(vgg16(224)))["macs"] == pytest.approx(15.47e9, rel=0.005)
    with pytest.raises(ShapeError, match="512x7x7"):  # its classifier is fixed to 224x224 inputs
        vgg16(160)


def test_list_public():
    assert list_public() == DATASETS_SHIPPED


@pytest.mark.parametrize("dataset", DATASETS_SHIPPED)
def test_load_public_columns_and_values(dataset):
    meta = public_meta(dataset)
    df = load_public(dataset)
    assert list(df.columns[:3]) == ["model", "device", "latency_ms"]
    assert len(df) > 0
    lat = df["latency_ms"].to_numpy()
    assert np.isfinite(lat).all() and (lat > 0).all()
    assert set(df["device"]) == set(meta["devices"])
    for device, info in meta["devices"].items():
        assert info["name"] and info["kind"] in ("measured", "simulated"), device
    assert (LUT_DIR / dataset / meta["file"]).stat().st_size < 3_000_000
    for key in ("citation", "date_obtained", "converted_by"):
        assert meta[key], key


def test_nasbench201_counts():
    meta = public_meta("nasbench201_help")
    df = load_public("nasbench201_help")
    assert len(df) == meta["rows"] * len(meta["devices"])
    per_device = df.groupby("device").size()
    assert (per_device == 15625).all()
    assert df.groupby("device")["model"].nunique().eq(15625).all()
    # every architecture string parses
    for arch in df["model"].drop_duplicates().sample(200, random_state=0):
        parse_arch(arch)
    # HW-NAS-Bench's README example for architecture 0 on cifar10
    first = df[df["arch_index"] == 0].set_index("device")["latency_ms"]
    assert first["pixel3"] == pytest.approx(3.60585)
    assert first["raspi4"] == pytest.approx(10.481976820010459, rel=1e-9)
    assert first["eyeriss"] == pytest.approx(3.64562)
    assert first["fpga"] == pytest.approx(2.57296)
    kinds = {d: v["kind"] for d, v in meta["devices"].items()}
    assert kinds["eyeriss"] == kinds["fpga"] == "simulated"


def test_mnv4_table6_rows():
    meta = public_meta("mobilenetv4_table6")
    df = load_public("mobilenetv4_table6")
    raw = pd.read_csv(LUT_DIR / "mobilenetv4_table6" / meta["file"])
    assert len(raw) == meta["rows"] and raw["model"].nunique() == meta["models"]
    assert (raw["status"] == "failed").sum() == meta["rows"] - len(df)
    row = df[(df["model"] == "MNv4-Conv-M") & (df["device"] == "pixel8_edgetpu")]
    assert row["latency_ms"].item() == 1.1 and row["zoo_name"].item() == "mnv4_conv_m"
    zoo = set(df.loc[df["zoo_name"].notna(), "zoo_name"])
    assert {"mobilenet_v1", "mobilenet_v2", "mnv4_conv_s", "mnv4_hybrid_l"} <= zoo
    assert zoo <= set(list_models())


def test_mnv4_table6_layer_tables():
    """The shipped counts of Table 6's timm networks: its rows, its MACs (but MobileOne-S4), usable as models."""
    df = load_public("mobilenetv4_table6")
    tables = load_layers("mobilenetv4_table6")
    rows = df[df["zoo_name"].isna()].drop_duplicates("model").set_index("model")
    assert len(tables) == 11 and set(tables) <= set(rows.index)
    for name, t in tables.items():
        assert t.attrs["fuse"] == "runtime" and t.attrs["weight_dtype"] == "int8" and len(t) > 20
        gmacs = t["macs"].sum() / 1e9
        if name != "MobileOne-S4":  # 2.98 counted, as the MobileOne paper; the table says 1.5
            assert gmacs == pytest.approx(rows.loc[name, "macs_g"], abs=0.06), name
        assert t["weight_bytes"].sum() / 1e6 == pytest.approx(rows.loc[name, "params_m"], rel=0.12), name
    small, big = tables["FastViT-T8"], tables["FastViT-SA36"]
    times = [roofline.predict(t, "pixel8_edgetpu_fitted").totals["latency_ms"].item() for t in (small, big)]
    assert 0 < times[0] < times[1]
    with pytest.raises(KeyError, match="no layer tables"):
        load_layers("coral_edgetpu")


QAI_PERF = """
precisions:
  float:
    components:
      MobileNet-v2:
        performance_metrics:
          Samsung Galaxy S24:
            tflite: {job_status: Passed, inference_time_milliseconds: 0.593, primary_compute_unit: NPU}
            onnx: {job_status: Failed}
          QCS8550 (Proxy):
            qnn_dlc: {inference_time_milliseconds: 0.61, primary_compute_unit: NPU}
  w8a8:
    components:
      MobileNet-v2:
        performance_metrics:
          Samsung Galaxy S24:
            tflite: {job_status: Passed, inference_time_milliseconds: 0.289, primary_compute_unit: CPU}
"""


def test_import_qai_hub_reads_perf_yaml(tmp_path):
    (tmp_path / "models" / "mobilenet_v2").mkdir(parents=True)
    (tmp_path / "models" / "mobilenet_v2" / "perf.yaml").write_text(QAI_PERF)
    (tmp_path / "devices_and_chipsets.yaml").write_text(
        "devices:\n  Samsung Galaxy S24: {chipset: qualcomm-snapdragon-8gen3}\n"
    )
    t = import_qai_hub(tmp_path / "models")
    assert len(t) == 3  # the failed job is dropped
    s24 = t[(t["device"] == "Samsung Galaxy S24") & (t["precision"] == "float")].iloc[0]
    assert (s24["model"], s24["runtime"], s24["compute_unit"], s24["latency_ms"]) == (
        "mobilenet_v2",
        "tflite",
        "NPU",
        0.593,
    )
    assert s24["chipset"] == "qualcomm-snapdragon-8gen3" and set(t["chipset"]) == {"qualcomm-snapdragon-8gen3", ""}
    with pytest.raises(ValueError, match="no <model>/perf.yaml"):
        import_qai_hub(tmp_path)


def test_qai_hub_shipped_rows_and_layer_tables():
    df = load_public("qai_hub")
    assert public_meta("qai_hub")["rows"] == len(df) and df["model"].nunique() == public_meta("qai_hub")["models"]
    row = df[(df["model"] == "mobilenet_v2") & (df["device"] == "Samsung Galaxy S24") & (df["precision"] == "float")
             & (df["runtime"] == "tflite")]  # fmt: skip
    assert row["latency_ms"].item() == pytest.approx(0.593) and row["compute_unit"].item() == "NPU"
    tables = load_layers("qai_hub")
    assert len(tables) == 23 and set(tables) <= set(df["model"])
    # torchvision's published GFLOPS (which are MACs): ResNet-50 4.09, MobileNetV2 0.30, ViT-B/16 17.56
    for name, gmacs in {"resnet50": 4.09, "mobilenet_v2": 0.30, "vit": 17.56, "efficientnet_b0": 0.39}.items():
        assert tables[name]["macs"].sum() / 1e9 == pytest.approx(gmacs, abs=0.01), name
        assert tables[name].attrs["weight_dtype"] == "fp16"


def test_coral_rows():
    meta = public_meta("coral_edgetpu")
    df = load_public("coral_edgetpu")
    assert len(df) == meta["rows"] and df["model"].nunique() == meta["models"]
    mnv1 = df[df["model"] == "MobileNet v1"].set_index("device")["latency_ms"]
    assert mnv1.to_dict() == {
        "desktop_cpu": 53.0,
        "desktop_cpu_usb_edgetpu": 2.4,
        "embedded_cpu": 164.0,
        "devboard_edgetpu": 2.4,
    }
    again = import_coral_benchmarks((LUT_DIR / "coral_edgetpu" / "source_table.txt").read_text())
    assert len(again) == len(df)


def test_import_mnv4_table6_small():
    text = (
        "| Model | Top-1 | Params M | MACs G | P6 CPU | P8 EdgeTPU | iPhone13 CoreML | P4 Hexagon | P7 GPU "
        "| S23 CPU | S23 GPU |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
        "| **MNv4-Conv-S** | 73.8 | 3.8 | 0.2 | 2.4 | 0.7 | 0.6 | 2.4 | 8.4 | 1.8 | 2.0 |\n"
        "| FastViT-T8† | 75.6 | 3.6 | 0.7 | 49.3 | 1.3 | - | Failed | 40.7 | 43.6 | 24.7 |\n"
    )
    t = import_mnv4_table6(text)
    assert len(t) == 7 + 6
    assert t[t["model"] == "FastViT-T8"]["status"].tolist().count("failed") == 1
    assert t[t["model"] == "MNv4-Conv-S"]["resolution"].unique().tolist() == [224]
    with pytest.raises(ValueError, match="Table 6"):
        import_mnv4_table6("no table here")


def _torch_zip(obj) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
    return buf.getvalue()


def test_import_help_roundtrip(tmp_path):
    archs = ARCHS[:3]
    (tmp_path / "latency").mkdir()
    (tmp_path / "str_arch2idx.pt").write_bytes(_torch_zip({a: i for i, a in enumerate(archs)}))
    (tmp_path / "latency" / "dev_a.pt").write_bytes(_torch_zip([1.5, 2.5, 3.5]))
    (tmp_path / "latency" / "dev_b.pt").write_bytes(_torch_zip([4, 5, 6]))
    t = import_help_nasbench201(tmp_path)
    assert len(t) == 6 and t[t["device"] == "dev_b"]["latency_ms"].tolist() == [4.0, 5.0, 6.0]
    assert t.loc[2, "model"] == archs[2]
    with pytest.raises(KeyError, match="dev_c"):
        import_help_nasbench201(tmp_path, ["dev_c"])
    (tmp_path / "latency" / "evil.pt").write_bytes(_torch_zip(np.float64(1.0)))
    with pytest.raises(pickle.UnpicklingError, match="only plain data"):
        import_help_nasbench201(tmp_path, ["evil"])
    out = write_public(t, tmp_path / "x.csv.xz", layout="wide", id_columns=("arch_index", "model"))
    back = pd.read_csv(out)
    assert list(back.columns) == ["arch_index", "model", "dev_a", "dev_b"] and len(back) == 3


def test_import_hw_nas_bench_format(tmp_path):
    archs = ARCHS[:2]
    block = {f"{d}_latency": [1.0 + i, 2.0 + i] for i, d in enumerate(["edgegpu", "raspi4", "edgetpu", "pixel3"])}
    block["config"] = [{"arch_str": a} for a in archs]
    path = tmp_path / "hw.pickle"
    path.write_bytes(pickle.dumps({"nasbench201": {"cifar10": block}}))
    t = import_hw_nas_bench(path, devices=("edgegpu", "edgetpu"))
    assert t["device"].tolist() == ["edgegpu", "edgegpu", "edgetpu", "edgetpu"]
    assert t["latency_ms"].tolist() == [1.0, 2.0, 3.0, 4.0] and t["model"].tolist()[:2] == archs
    with pytest.raises(KeyError, match="cifar100"):
        import_hw_nas_bench(path, dataset="cifar100")


# -- NAS-Bench-201 builder ------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("arch", ARCHS)
def test_nasbench201_build_matches_closed_form(arch, dataset):
    totals = roofline.totals(roofline.count(build_nasbench201(arch, dataset)))
    expected = arch_costs(arch, dataset)
    _, classes = DATASETS[dataset]
    assert totals["params"] == expected["params"]
    assert totals["macs"] == expected["macs"] - classes  # NAS-Bench-201 also counts the FC bias adds


def test_nasbench201_matches_published_costs():
    """NAS-Bench-201's own FLOP (= MACs) / Params for arch 9930, stored in meta.yaml: the independent check."""
    ref = public_meta("nasbench201_help")["reference_costs"][0]
    assert ref["arch"] == ARCH_9930
    for dataset in DATASETS:
        totals = roofline.totals(roofline.count(build_nasbench201(ref["arch"], dataset)))
        _, classes = DATASETS[dataset]
        nb201_macs = (totals["macs"] + classes) / 1e6  # NAS-Bench-201 adds the classifier's bias adds
        assert nb201_macs == pytest.approx(ref[dataset]["flop_m"], abs=0.005), dataset
        assert totals["params"] / 1e6 == pytest.approx(ref[dataset]["params_m"], abs=0.0005), dataset


def test_nasbench201_runs_and_shapes():
    ort = pytest.importorskip("onnxruntime")
    for dataset, (res, classes) in DATASETS.items():
        model = build_nasbench201(ARCHS[4], dataset)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        (out,) = sess.run(None, {"input": np.zeros((1, 3, res, res), np.float32)})
        assert out.shape == (1, classes)


@pytest.mark.parametrize(
    "bad",
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|",
        "|conv~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "nor_conv_3x3~0+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ],
)
def test_parse_arch_strict(bad):
    with pytest.raises(ValueError):
        parse_arch(bad)
    with pytest.raises(ValueError, match="dataset"):
        build_nasbench201(ARCH_9930, "imagenet")
