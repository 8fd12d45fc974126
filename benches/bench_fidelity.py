"""Fidelity: how well each predictor matches public measurements of real devices (a benchmark, not a test).

For every public dataset shipped in ``lut/`` (``roofline.public``):

- **MobileNetV4 Table 6** (arXiv 2404.10518): per device, the zoo networks the table lists, then also the
  11 timm networks whose layer tables ship with it. Spearman's rank correlation of MACs alone, of the
  shipped spec (for the paper's four ridge-point devices, next to its Table 16), and the fitted latency
  model's leave-one-out errors; and Table 16's r_s (MACs) next to what Table 6's own MACs column gives.
- **NAS-Bench-201** (HW-NAS-Bench and HELP's phones, CIFAR-10 cells at 32x32): per device, the model is
  fitted on ``--train`` random networks and judged on ``--unseen`` others: within +-10% / +-5%, median
  |error|, Spearman; next to MACs alone (latency = a x MACs + b, least squares on the same training set)
  and the shipped datasheet spec where one exists (Raspberry Pi 4). It also prints how much networks
  with equal MACs and bytes differ in measured latency, and the ceiling of any model that counts: the
  share of networks within +-10% of the median of those with the same operations.
- **Qualcomm AI Hub** (``lut/qai_hub``): per device, the fitted model's leave-one-out errors on the 23
  torchvision classifiers' published NPU times, next to MACs alone; and the shipped
  ``galaxy_s24_npu_fitted`` scaled to each other device from 5 of its networks (``fit --base``),
  judged on the other 18.
- **Coral Edge TPU benchmarks** (coral.ai): the shipped ``coral_edgetpu`` spec against the published
  milliseconds of the networks the zoo builds (target: within 0.5-2x).

Usage: ``python benches/bench_fidelity.py [--train 30] [--unseen 270] [--seed 0] [--devices pixel3 raspi4]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import roofline  # noqa: E402
from roofline.devices.fit import fit  # noqa: E402
from roofline.public import load_layers, load_public, public_meta  # noqa: E402
from roofline.public.nasbench201 import build_nasbench201, parse_arch  # noqa: E402
from roofline.public.reference_nets import resnet50, vgg16  # noqa: E402

# the paper's ridge-point devices: Table 6 column -> shipped spec, and Table 16's Spearman for it
TABLE16 = {"pixel6_cpu": ("pixel6_cpu", 0.973), "s23_cpu": ("galaxy_s23_cpu", 0.962),
           "pixel4_hexagon": ("pixel4_dsp", 0.962), "pixel8_edgetpu": ("pixel8_edgetpu", 0.973)}  # fmt: skip
TABLE16_MACS = {
    "pixel6_cpu": 0.962,
    "s23_cpu": 0.940,
    "pixel4_hexagon": 0.758,
    "pixel8_edgetpu": 0.857,
}  # its r_s (MACs)
# NAS-Bench-201 devices with a shipped datasheet spec
NB201_SPECS = {"raspi4": "rpi4_cpu"}
# Coral's benchmark rows the zoo builds, and two whose weights (25 MB, 138 MB) cannot stay on chip
CORAL_ZOO = {"MobileNet v1": "mobilenet_v1", "MobileNet v2": "mobilenet_v2", "ResNet-50 V1": "resnet50",
             "VGG16": "vgg16"}  # fmt: skip


def spearman(a, b) -> float:
    ra, rb = pd.Series(np.asarray(a, float)).rank(), pd.Series(np.asarray(b, float)).rank()
    return float(np.corrcoef(ra, rb)[0, 1])


def errors(predicted, measured) -> dict:
    e = np.asarray(predicted, float) / np.asarray(measured, float) - 1
    return {"within_10pct": np.mean(np.abs(e) <= 0.10), "within_5pct": np.mean(np.abs(e) <= 0.05),
            "median_abs_error": np.median(np.abs(e)), "spearman": spearman(predicted, measured)}  # fmt: skip


def line(label: str, e: dict) -> str:
    return (f"  {label:<24} within10 {e['within_10pct']:6.1%}  within5 {e['within_5pct']:6.1%}  "
            f"median|err| {e['median_abs_error']:6.1%}  Spearman {e['spearman']:.3f}")  # fmt: skip


def table6() -> None:
    df = load_public("mobilenetv4_table6")
    zoo = df[df["zoo_name"].notna()][["model", "zoo_name", "resolution"]].drop_duplicates()
    int8 = {"fuse": "runtime", "weight_dtype": "int8", "activation_dtype": "int8"}
    tables = {label: roofline.count(roofline.zoo.build(z, resolution=int(r)), **int8)
              for label, z, r in zoo.itertuples(index=False)}  # fmt: skip
    zoo_labels = set(tables)
    tables |= load_layers("mobilenetv4_table6")  # the networks timm builds, counted once (benches/table6_layers.py)
    print(f"\n== MobileNetV4 Table 6, int8: {len(zoo_labels)} zoo networks, then with {len(tables) - len(zoo_labels)} "
          "timm networks (lut/mobilenetv4_table6/layers.csv.xz) ==")  # fmt: skip
    for device, rows in df[df["model"].isin(tables)].groupby("device"):
        for subset in ("zoo", "all"):
            measured = rows.set_index("model")["latency_ms"]
            if subset == "zoo":
                measured = measured[measured.index.isin(zoo_labels)]
            names = list(measured.index)
            macs = [tables[n]["macs"].sum() for n in names]
            # the best any predictor can reach: the table's rounding ties networks that a prediction orders
            best = spearman(measured.to_numpy() + np.arange(len(names)) * 1e-9, measured)
            out = f"{device if subset == 'zoo' else '':<16}{subset:>4} n={len(names):2d}  Spearman (best {best:.3f}): "
            out += f"MACs {spearman(macs, measured):.3f}"
            if device in TABLE16:
                spec, paper = TABLE16[device]
                shipped = [roofline.predict(tables[n], spec).totals["latency_mac_equiv"].iloc[0] for n in names]
                out += f", shipped {spec} {spearman(shipped, measured):.3f} (Table 16: {paper:.3f})"
            result = fit(pd.DataFrame({"model": [tables[n] for n in names], "latency_ms": measured.to_numpy()}), "int8")
            out += (f", fitted (leave-one-out) {result.cv['spearman']:.3f}, within10 {result.cv['within_10pct']:.0%}, "
                    f"median|err| {result.cv['median_abs_error']:.1%}")  # fmt: skip
            print(out)
    # Table 16's r_s are over networks the paper does not list: its own MACs column does not give its r_s (MACs)
    print("  Table 16's r_s(MACs) against the r_s of Table 6's own MACs column (all its measured rows):")
    for device, paper in TABLE16_MACS.items():
        rows = df[df["device"] == device]
        own = spearman(rows["macs_g"], rows["latency_ms"])
        print(f"    {device:<16} Table 16 {paper:.3f}, Table 6 {own:.3f} (n={len(rows)})")


def ceiling(lat: pd.Series) -> float:
    """Share of all networks within +-10% of the median of the networks with the same operations.

    NAS-Bench-201 networks with the same multiset of cell operations have identical layer lists (every
    edge exists; ``none`` multiplies by zero, ``skip_connect`` is summed), so no model that counts layers
    can tell them apart: their spread is measurement noise or effects no count sees, and this share
    bounds what such a model reaches on average.
    """
    ops = lat.index.map(lambda a: tuple(sorted(op for node in parse_arch(a) for op, _ in node)))
    median = lat.groupby(ops).transform("median")
    return float(np.mean(np.abs(lat / median - 1) <= 0.10))


def nasbench201(train: int, unseen: int, seed: int, devices: list[str] | None) -> None:
    df = load_public("nasbench201_help")
    meta = public_meta("nasbench201_help")["devices"]
    print(f"\n== NAS-Bench-201 (CIFAR-10 cells), fp32: fit on {train}, judged on {unseen} unseen ==")
    rng = np.random.default_rng(seed)
    archs = df["model"].unique()
    picked = rng.choice(archs, size=train + unseen, replace=False)
    t = time.perf_counter()
    tables = {a: roofline.count(build_nasbench201(a, "cifar10"), fuse="runtime", weight_dtype="fp32",
                                activation_dtype="fp32") for a in picked}  # fmt: skip
    print(f"  ({len(tables)} networks built and counted in {time.perf_counter() - t:.1f} s)")
    fit_set, test_set = list(picked[:train]), list(picked[train:])
    for device in devices or list(meta):
        lat = df[df["device"] == device].set_index("model")["latency_ms"]
        y_fit, y_test = lat[fit_set].to_numpy(), lat[test_set].to_numpy()
        kind = meta[device].get("kind", "")
        # the ceiling of any counting model: networks with equal MACs and bytes, and their measured spread
        cost = [tuple(roofline.totals(tables[a])[k] for k in ("macs", "bytes")) for a in picked]
        costs = pd.DataFrame({"cost": cost, "ms": lat[list(picked)].to_numpy()})
        costs = costs.groupby("cost")["ms"].agg(["count", "min", "max"])
        same = costs[costs["count"] > 1]
        spread = f"{(same['max'] / same['min']).median():.2f}x" if len(same) else "-"
        print(f"{device} ({kind}): measured median {np.median(y_test):.3g} ms; {len(same)} groups of networks with "
              f"equal MACs and bytes differ by a median {spread} (max/min); ceiling of any counting model: "
              f"{ceiling(lat):.0%} within +-10% (all {len(lat)} networks)")  # fmt: skip
        macs_fit = np.array([roofline.totals(tables[a])["macs"] for a in fit_set], float)
        macs_test = np.array([roofline.totals(tables[a])["macs"] for a in test_set], float)
        a, b = np.polyfit(macs_fit, y_fit, 1)
        print(line("MACs alone (a*MACs+b)", errors(np.maximum(a * macs_test + b, 1e-6), y_test)))
        if device in NB201_SPECS:
            spec = NB201_SPECS[device]
            shipped = [roofline.predict(tables[x], spec, precision="fp32").totals["latency_ms"].iloc[0]
                       for x in test_set]  # fmt: skip
            print(line(f"shipped {spec}", errors(shipped, y_test)))
            few = fit(pd.DataFrame({"model": [tables[x] for x in fit_set[:5]], "latency_ms": y_fit[:5]}), "fp32",
                      base=spec)  # fmt: skip
            scaled = [roofline.predict(tables[x], few.spec).totals["latency_ms"].iloc[0] for x in test_set]
            print(line(f"{spec} --base, 5 nets", errors(scaled, y_test)))
        t = time.perf_counter()
        result = fit(pd.DataFrame({"model": [tables[x] for x in fit_set], "latency_ms": y_fit}), "fp32",
                     source=f"nasbench201_help {device}")  # fmt: skip
        predicted = [roofline.predict(tables[x], result.spec).totals["latency_ms"].iloc[0] for x in test_set]
        print(line("fitted latency model", errors(predicted, y_test)) + f"  ({time.perf_counter() - t:.1f} s)")


def coral_measurements() -> pd.DataFrame:
    """Coral's published USB Accelerator times of the networks built here (model: ONNX or zoo name)."""
    df = load_public("coral_edgetpu")
    builders = {"resnet50": resnet50, "vgg16": vgg16}
    rows = []
    for name, zoo_name in CORAL_ZOO.items():
        row = df[(df["model"] == name) & (df["device"] == "desktop_cpu_usb_edgetpu")]
        model = builders[zoo_name](int(row["resolution"].iloc[0])) if zoo_name in builders else zoo_name
        rows.append({"label": zoo_name, "model": model, "latency_ms": float(row["latency_ms"].iloc[0])})
    return pd.DataFrame(rows)


def coral() -> None:
    """The shipped spec, its datasheet part alone, and its fixed cost refitted from the published times."""
    from dataclasses import replace

    print("\n== Coral Edge TPU benchmarks (USB Accelerator) vs the coral_edgetpu spec (int8) ==")
    shipped = roofline.load_device("coral_edgetpu")
    datasheet = replace(shipped, calibration={}, fit={}, provenance="datasheet")
    ms = coral_measurements()
    for r in ms.itertuples():
        pred = roofline.predict(r.model, [datasheet, shipped])
        sheet, fitted = pred.totals["latency_ms"]
        weights_mb = roofline.totals(pred.layers)["weight_bytes"] / 1e6
        print(f"  {r.label:<14} weights {weights_mb:6.1f} MB  published {r.latency_ms:6.2f} ms; datasheet + memory "
              f"model {sheet:7.2f} ms ({sheet / r.latency_ms:4.2f}x); shipped {fitted:7.2f} ms "
              f"({fitted / r.latency_ms:4.2f}x)")  # fmt: skip
    result = fit(ms[["model", "latency_ms"]], "int8", base=datasheet, scale_base=False, name="coral_edgetpu",
                 kind="npu", source="coral.ai/docs/edgetpu/benchmarks, USB Accelerator")  # fmt: skip
    refit = result.spec.calibration["network"]["overhead_s"] * 1e3
    shipped_ms = shipped.calibration.get("network", {}).get("overhead_s", 0.0) * 1e3
    print(f"  fixed cost per inference refitted {refit:.2f} ms (shipped {shipped_ms:.2f} ms); {result.summary()}")


def qai_hub(base_networks: int = 5, seed: int = 0) -> None:
    """AI Hub's published NPU times of its 23 torchvision classifiers (float models, run in fp16)."""
    from roofline.public.shipped_fits import QAI_HUB

    tables = load_layers("qai_hub")
    df = load_public("qai_hub")
    df = df[df["model"].isin(tables) & (df["precision"] == "float") & (df["runtime"] == "tflite")
            & (df["compute_unit"] == "NPU")]  # fmt: skip
    print(
        f"\n== Qualcomm AI Hub (lut/qai_hub): {len(tables)} torchvision classifiers, TFLite float on the NPU, fp16 =="
    )
    shipped = {spec: device for device, (spec, *_) in QAI_HUB.items()}
    rng = np.random.default_rng(seed)
    for device, rows in df.groupby("device"):
        measured = rows.set_index("model")["latency_ms"]
        if len(measured) < 15:
            continue
        models = [tables[n] for n in measured.index]
        macs = [t["macs"].sum() for t in models]
        result = fit(pd.DataFrame({"model": models, "latency_ms": measured.to_numpy()}), "fp16")
        out = (f"  {device:<30} n={len(measured)}  MACs Spearman {spearman(macs, measured):.3f}; fitted "
               f"(leave-one-out) within10 {result.cv['within_10pct']:4.0%}  within5 {result.cv['within_5pct']:4.0%}  "
               f"median|err| {result.cv['median_abs_error']:5.1%}  Spearman {result.cv['spearman']:.3f}")  # fmt: skip
        for spec, its_device in shipped.items():
            if its_device == device:
                continue
            # a new device from a few networks: the shipped spec of another phone, scaled (fit --base)
            few = rng.choice(len(models), base_networks, replace=False)
            rest = np.setdiff1d(np.arange(len(models)), few)
            scaled = fit(pd.DataFrame({"model": [models[i] for i in few], "latency_ms": measured.to_numpy()[few]}),
                         "fp16", base=spec).spec  # fmt: skip
            pred = [roofline.predict(models[i], scaled).totals["latency_ms"].item() for i in rest]
            e = errors(pred, measured.to_numpy()[rest])
            out += (f"; {spec} --base, {base_networks} nets: within10 {e['within_10pct']:4.0%} of the other "
                    f"{len(rest)}, median|err| {e['median_abs_error']:5.1%}")  # fmt: skip
        print(out)


def datasheets() -> None:
    """The datasheet specs against published latencies: datasheet numbers alone, and as shipped (their
    fitted compute and memory efficiencies and fixed cost; ``roofline.public.shipped_fits.DATASHEET``)."""
    from dataclasses import replace

    from roofline.public.shipped_fits import DATASHEET, datasheet_rows, fit_datasheet

    print("\n== Datasheet specs vs published latencies (predicted / published) ==")
    for name in DATASHEET:
        shipped = roofline.load_device(name)
        sheet = replace(shipped, efficiency={}, calibration={}, fit={}, provenance="datasheet")
        rows = datasheet_rows(name)
        ratios = []
        for model, label, ms in zip(rows["model"], rows["label"], rows["latency_ms"]):
            a, b = (
                roofline.predict(model, [sheet, shipped], precision=rows.attrs["precision"]).totals["latency_ms"] / ms
            )
            ratios.append((label, a, b))
        e = shipped.efficiency
        loo = fit_datasheet(name)
        print(f"  {name}: efficiency compute {e['compute']:.0%}, memory {e['memory']:.0%}, fixed cost "
              f"{shipped.calibration['network']['overhead_s'] * 1e3:.2f} ms; leave-one-out ratios "
              f"{(loo.table['cv_predicted_ms'] / loo.table['measured_ms']).min():.2f}-"
              f"{(loo.table['cv_predicted_ms'] / loo.table['measured_ms']).max():.2f}x")  # fmt: skip
        for label, a, b in ratios:
            print(f"    {label:<24} datasheet {a:5.2f}x  shipped {b:5.2f}x")
    table = load_public("mobilenetv4_table6")
    rows = table[(table["device"] == "iphone13_coreml") & table["zoo_name"].notna()]
    ratios = [roofline.predict(roofline.zoo.build(z, resolution=int(r)), "apple_a15_ane").totals["latency_ms"].iloc[0]
              / ms for z, r, ms in zip(rows["zoo_name"], rows["resolution"], rows["latency_ms"])]  # fmt: skip
    print(f"  apple_a15_ane (datasheet only) vs Table 6 iPhone 13 CoreML: {min(ratios):.2f}-{max(ratios):.2f}x "
          f"over {len(ratios)} networks")  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=30)
    p.add_argument("--unseen", type=int, default=270)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--devices", nargs="*", help="NAS-Bench-201 devices (default: all)")
    args = p.parse_args()
    table6()
    nasbench201(args.train, args.unseen, args.seed, args.devices)
    coral()
    qai_hub()
    datasheets()
    return 0


if __name__ == "__main__":
    sys.exit(main())
