"""Plots: pure functions of data that draw on an Axes and return it (matplotlib is imported here only).

- ``plot_sweep``: latency vs ridge point, one line per model, device ridge points marked;
- ``plot_roofline``: one model's layers on one device's roofline;
- ``plot_breakdown``: per-stage latency shares on several devices, compute- and memory-bound parts;
- ``plot_pareto``: latency vs top-1 accuracy on one device, Pareto front marked;
- ``plot_search``: a search's candidates, latency on one device vs (proxy) accuracy, front and picks marked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from roofline.errors import InvalidParameterError

__all__ = ["plot_sweep", "plot_roofline", "plot_breakdown", "plot_pareto", "plot_search", "plot_validation", "save"]

_BOUND_COLORS = {"compute": "#1f77b4", "memory": "#d62728"}


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    return ax


def _mark_devices(ax, devices: dict[str, float], xmax: float) -> None:
    ymin, ymax = ax.get_ylim()
    for i, (name, rp) in enumerate(sorted(devices.items(), key=lambda kv: kv[1])):
        if rp > xmax:
            continue
        ax.axvline(rp, color="0.55", lw=0.8, ls="--", zorder=0)
        y = ymax / (1.18 ** (i % 6)) if ax.get_yscale() == "log" else ymax - (ymax - ymin) * 0.04 * (i % 6 + 1)
        ax.text(rp, y, f" {name}", rotation=90, va="top", ha="left", fontsize=7, color="0.35")


def plot_sweep(df: pd.DataFrame, ax=None, relative: bool = True, devices: dict[str, float] | None = None):
    """Latency vs ridge point (a ``roofline.sweep`` result), one line per model.

    ``relative`` plots ``relative_latency`` (to the sweep's reference model, or to each model's own
    latency at the first ridge point), else MAC-equivalents on a log axis. Device ridge points
    (``df.attrs["devices"]`` unless given) are marked as dashed lines.
    """
    ax = _axes(ax)
    column = "relative_latency" if relative else "latency_mac_equiv"
    last = df[df.ridge_macs_per_byte == df.ridge_macs_per_byte.max()].set_index("model")[column]
    order = last.sort_values(ascending=False).index
    cmap = __import__("matplotlib").colormaps["tab20"]
    for i, model in enumerate(order):
        g = df[df.model == model]
        ax.plot(g.ridge_macs_per_byte, g[column], label=model, color=cmap(i % 20), lw=2 if "mnv4" in model else 1.2)
    ref = df.attrs.get("reference")
    if relative:
        ax.set_ylabel(f"latency relative to {ref}" if ref else "latency relative to the model at RP 0")
    else:
        ax.set_ylabel("latency x PeakMACs (MAC-equivalents)")
    ax.set_yscale("log")
    ax.set_xlabel("ridge point (MACs per byte)")
    ax.set_xlim(df.ridge_macs_per_byte.min(), df.ridge_macs_per_byte.max())
    ax.set_title(f"Ridge-point sweep ({df.attrs.get('precision', 'int8')} weights and activations)")
    ax.grid(True, which="both", alpha=0.25)
    _mark_devices(ax, df.attrs.get("devices", {}) if devices is None else devices, df.ridge_macs_per_byte.max())
    ax.legend(fontsize=7, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return ax


def plot_roofline(prediction, device: str | None = None, ax=None):
    """One model's layers on one device's roofline (a ``roofline.predict`` result).

    Each layer is a point at its operational intensity (MACs/byte) and attained MACs/s (its MACs over
    its roofline time), coloured by what bounds it, sized by its share of the latency; the roof is
    min(PeakMACs, bandwidth x intensity). On a ridge-only device the y axis is a fraction of PeakMACs.
    """
    ax = _axes(ax)
    device = device or prediction.info.index[0]
    j = list(prediction.info.index).index(device)
    layers = prediction.per_layer(device)
    rel = bool(prediction.relative[j])
    peak = 1.0 if rel else float(prediction.peak[j])
    ridge = float(prediction.info["ridge_macs_per_byte"].iloc[j])
    time = layers["latency_mac_equiv"].to_numpy() / peak  # seconds (or 1/PeakMACs units)
    keep = (layers["macs"].to_numpy(float) > 0) & (layers["bytes"].to_numpy() > 0)
    intensity = layers["macs"].to_numpy(float)[keep] / layers["bytes"].to_numpy()[keep]
    attained = layers["macs"].to_numpy(float)[keep] / time[keep]
    share = time[keep] / time.sum()
    bounds = layers["bound"].to_numpy()[keep]
    for bound, color in _BOUND_COLORS.items():
        m = bounds == bound
        ax.scatter(intensity[m], attained[m], s=10 + 800 * share[m], c=color, alpha=0.6, edgecolors="k",
                   linewidths=0.3, label=f"{bound}-bound layers ({m.sum()})")  # fmt: skip
    lo = min(intensity.min() if intensity.size else 1.0, ridge / 10 or 0.1) / 2
    hi = max(intensity.max() if intensity.size else 10.0, ridge * 10) * 2
    x = np.geomspace(max(lo, 1e-3), hi, 200)
    ax.plot(
        x, np.minimum(peak, x * peak / max(ridge, 1e-12)), color="k", lw=1.5, label=f"roof (ridge {ridge:.4g} MACs/B)"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (MACs per byte)")
    ax.set_ylabel("attained / PeakMACs" if rel else "attained MACs/s")
    name = prediction.layers.attrs.get("model", "model")
    ax.set_title(f"{name} on {prediction.info['display_name'].iloc[j]} ({prediction.info['precision'].iloc[j]})")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_breakdown(breakdown: pd.DataFrame, ax=None, labels: dict[float, str] | None = None):
    """Per-stage latency shares side by side for several ridge points (a ``stage_breakdown`` result).

    One stacked bar per ridge point (or device): segments are stages from stem to head, solid where
    compute-bound, hatched where memory-bound.
    """
    ax = _axes(ax)
    rps = list(dict.fromkeys(breakdown.ridge_macs_per_byte))
    stages = list(dict.fromkeys(breakdown.stage))
    cmap = __import__("matplotlib").colormaps["viridis"]
    colors = {s: cmap(i / max(1, len(stages) - 1)) for i, s in enumerate(stages)}
    for x, rp in enumerate(rps):
        bottom = 0.0
        g = breakdown[breakdown.ridge_macs_per_byte == rp]
        for stage in stages:
            for bound in ("compute", "memory"):
                share = g.loc[(g.stage == stage) & (g.bound == bound), "share"].sum()
                if share:
                    ax.bar(x, share, bottom=bottom, color=colors[stage], edgecolor="white", lw=0.5,
                           hatch="///" if bound == "memory" else None)  # fmt: skip
                    bottom += share
    names = [(labels or {}).get(rp, f"RP {rp:g}") for rp in rps]
    ax.set_xticks(range(len(rps)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("share of latency")
    ax.set_ylim(0, 1)
    from matplotlib.patches import Patch

    handles = [Patch(color=colors[s], label=s) for s in stages]
    handles += [Patch(facecolor="white", edgecolor="k", label="compute-bound"),
                Patch(facecolor="white", edgecolor="k", hatch="///", label="memory-bound")]  # fmt: skip
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, title="stage")
    ax.set_title("Where the latency goes, by stage (output resolution)")
    return ax


def plot_pareto(front: pd.DataFrame, ridge_macs_per_byte: float, ax=None, label: str | None = None):
    """Latency vs top-1 at one ridge point (a ``roofline.analysis.sweep.pareto`` result), Pareto front joined."""
    ax = _axes(ax)
    g = front[np.isclose(front.ridge_macs_per_byte, ridge_macs_per_byte)]
    if g.empty:
        raise InvalidParameterError(f"no sweep rows at ridge point {ridge_macs_per_byte}")
    column = "relative_latency"
    for _, r in g.iterrows():
        mnv4 = r.model.startswith("mnv4")
        ax.scatter(r[column], r.top1, s=45 if mnv4 else 25, c="#d62728" if mnv4 else "#1f77b4",
                   edgecolors="k" if r.pareto else "none", zorder=3)  # fmt: skip
        ax.annotate(r.model, (r[column], r.top1), fontsize=7, xytext=(4, -3), textcoords="offset points")
    p = g[g.pareto].sort_values(column)
    ax.step(p[column], p.top1, where="post", color="0.3", lw=1, ls="--")
    from matplotlib.lines import Line2D
    from matplotlib.ticker import ScalarFormatter

    dot = dict(marker="o", ls="", markersize=6)
    handles = [
        Line2D([], [], color="#d62728", label="MobileNetV4", **dot),
        Line2D([], [], color="#1f77b4", label="other networks", **dot),
        Line2D([], [], color="w", markeredgecolor="k", label="on the Pareto front", **dot),
        Line2D([], [], color="0.3", ls="--", label="Pareto front"),
    ]
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ref = front.attrs.get("reference")
    ax.set_xlabel(f"latency relative to {ref}" if ref else "relative latency")
    ax.set_ylabel("ImageNet top-1 (%)  [MobileNetV4 paper, Table 6]")
    ax.set_title(label or f"Latency vs accuracy at ridge point {ridge_macs_per_byte:g} MACs/byte")
    ax.grid(True, which="both", alpha=0.25)
    return ax


def plot_search(df: pd.DataFrame, latency: str, ax=None, picks: dict[str, pd.Series] | None = None,
                accuracy_source: str = "proxy", front=None, front_label: str | None = None):  # fmt: skip
    """Candidates of a search (``roofline.search.search`` tables, several may be concatenated with a
    ``search`` column): ``latency`` (a latency column) vs accuracy, the Pareto front, and ``picks``
    (label -> row) marked; ``front`` (latencies, accuracies), e.g. a device's front from
    ``roofline.search.fronts.estimate_fronts``, is drawn dashed. The y label says when accuracy is the
    built-in proxy."""
    from roofline.search import pareto_front

    ax = _axes(ax)
    groups = df.groupby("search", sort=False) if "search" in df else [(None, df)]
    cmap = __import__("matplotlib").colormaps["tab10"]
    for i, (name, g) in enumerate(groups):
        ax.scatter(g[latency], g.accuracy, s=6, alpha=0.35, color=cmap(i), label=name or "candidates", lw=0)
    own = pareto_front(df, latency=latency)
    ax.step(own[latency], own.accuracy, where="post", color="0.2", lw=1.2, label="Pareto front")
    if front is not None:
        lat, acc = (np.asarray(v, dtype=float) for v in front)
        ax.step(lat, acc, where="post", color="tab:red", lw=1.0, ls="--", label=front_label or "estimated front")
    for j, (label, row) in enumerate((picks or {}).items()):
        ax.scatter(row[latency], row["accuracy"], s=90, marker="*", color=cmap(j), edgecolors="k", zorder=4)
        ax.annotate(label, (row[latency], row["accuracy"]), fontsize=8, xytext=(5, -4), textcoords="offset points")
    unit, device = latency.split(":", 1)
    ax.set_xlabel(f"{device}: latency ({'ms' if unit == 'latency_ms' else 'MAC-equivalents'}, roofline)")
    proxy = accuracy_source == "proxy"
    ax.set_ylabel("PROXY top-1 (%): fit to log MACs, log params" if proxy else f"top-1 (%) [{accuracy_source}]")
    ax.set_xscale("log")
    ax.set_title(f"Search candidates on {device}")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="lower right", markerscale=2)
    return ax


def plot_validation(df: pd.DataFrame, ax=None, predictors=("roofline", "calibrated", "lut")):
    """Predicted vs measured latency (a ``roofline.profilers.validate`` table): one marker per predictor, the
    diagonal and a ±10% band; models are named when there are few, else only those the last
    predictor misses by more than 10%."""
    ax = _axes(ax)
    styles = {"roofline": ("#7f7f7f", "x"), "calibrated": ("#1f77b4", "s"), "lut": ("#d62728", "o")}
    lo = min(df["measured_ms"].min(), *(df[f"{p}_ms"].min() for p in predictors)) * 0.8
    hi = max(df["measured_ms"].max(), *(df[f"{p}_ms"].max() for p in predictors)) * 1.25
    x = np.geomspace(lo, hi, 50)
    ax.plot(x, x, color="0.3", lw=1)
    ax.fill_between(x, x * 0.9, x * 1.1, color="0.85", label="±10%")
    for p in predictors:
        color, marker = styles.get(p, ("k", "."))
        err = (df[f"{p}_error"].abs() <= 0.10).mean()
        ax.scatter(df["measured_ms"], df[f"{p}_ms"], c=color, marker=marker, s=28, zorder=3,
                   label=f"{p} ({err:.0%} within ±10%)")  # fmt: skip
    last = predictors[-1]
    for r in df.itertuples():
        if len(df) > 12 and abs(getattr(r, f"{last}_error")) <= 0.10:
            continue
        ax.annotate(r.model, (r.measured_ms, getattr(r, f"{predictors[-1]}_ms")), fontsize=6, xytext=(3, -3),
                    textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured latency (ms, median)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title("Predicted vs measured on this machine")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="both", alpha=0.25)
    return ax


def save(ax, path) -> str:
    """Write the figure of ``ax`` (PNG, SVG, PDF: by the file's suffix) and close it."""
    import matplotlib.pyplot as plt

    fig = ax.figure
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return str(path)
