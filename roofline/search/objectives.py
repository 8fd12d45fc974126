"""Search objectives: the MnasNet reward, multi-device rewards, and an accuracy proxy.

MnasNet (Tan et al., CVPR 2019, Eqs. 2-3): reward = ACC(m) x (LAT(m) / T)^w with w = alpha when
LAT(m) <= T, else beta; soft constraint alpha = beta = -0.07, hard constraint alpha = 0, beta = -1.
Over several devices (each with its own target), ``"worst"`` takes the smallest reward and ``"geomean"``
the geometric mean.

Accuracy comes from the user (their own training or evaluation). The built-in default,
``proxy_accuracy``, is a PROXY: a least-squares fit of ImageNet top-1 against log MACs and log
parameters on the zoo networks whose top-1 the MobileNetV4 paper publishes (Table 6, stored in
``roofline/zoo/models.yaml`` with its source). It knows nothing of architecture quality beyond size; every
result that used it says ``accuracy_source = "proxy"``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from roofline import zoo
from roofline.errors import InvalidParameterError, check_choice
from roofline.zoo.blocks import network_cost

__all__ = ["Reward", "mnasnet_reward", "multi_device_reward", "proxy_accuracy", "load_accuracy", "PROXY_SOURCE", "SOFT",
           "HARD"]  # fmt: skip

SOFT = (-0.07, -0.07)  # (alpha, beta)
HARD = (0.0, -1.0)
CONSTRAINTS = {"soft": SOFT, "hard": HARD}
PROXY_SOURCE = "proxy: top-1 ~ log MACs + log params, fitted to the zoo's MobileNetV4-paper Table 6 values"


def mnasnet_reward(accuracy, latency, target, alpha: float = SOFT[0], beta: float = SOFT[1]) -> np.ndarray:
    """ACC x (LAT / T)^w, w = alpha at or under the target T, beta over it (arrays broadcast)."""
    accuracy, latency, target = (np.asarray(a, dtype=float) for a in (accuracy, latency, target))
    if np.any(latency <= 0) or np.any(target <= 0):
        raise InvalidParameterError("latencies and targets must be > 0")
    ratio = latency / target
    return accuracy * ratio ** np.where(ratio <= 1.0, alpha, beta)


def multi_device_reward(accuracy, latency, targets, combine: str = "worst", alpha: float = SOFT[0],
                        beta: float = SOFT[1]) -> np.ndarray:  # fmt: skip
    """Reward over devices: ``latency`` is (candidates x devices), ``targets`` one per device;
    ``combine`` = "worst" (min over devices) or "geomean"."""
    check_choice(combine, ("worst", "geomean"), "combine")
    r = mnasnet_reward(np.asarray(accuracy, float)[:, None], latency, np.asarray(targets, float)[None, :], alpha, beta)
    return r.min(axis=1) if combine == "worst" else np.exp(np.log(r).mean(axis=1))


@lru_cache(maxsize=1)
def _proxy_fit() -> np.ndarray:
    rows = []
    for name in zoo.list_models():
        m = zoo.get(name)
        if m.top1 is not None:
            macs, params = m.analytical()
            rows.append((np.log(macs), np.log(params), m.top1))
    x = np.array([(1.0, a, b) for a, b, _ in rows])
    y = np.array([t for *_, t in rows])
    return np.linalg.lstsq(x, y, rcond=None)[0]


def proxy_accuracy(spec: str, resolution: int) -> float:
    """The PROXY top-1 (%) of a network from its MACs and parameters (see the module docstring)."""
    macs, params = network_cost(spec, resolution)
    a, b, c = _proxy_fit()
    return float(a + b * np.log(macs) + c * np.log(params))


def load_accuracy(text: str):
    """The user's accuracy as a callable ``(spec, resolution) -> top-1 %`` named for result files:
    ``module:function`` (imported; the module may be a .py path) or a ``.csv`` with columns spec,
    resolution and top1. A CSV holds only the networks it lists: asking for another is an error naming it
    (train or evaluate it, or search a space the file covers: estimating fronts prices a whole small
    space, or a sample of a large one)."""
    import importlib
    import importlib.util
    from pathlib import Path

    if text.lower().endswith(".csv"):
        from roofline.zoo.blocks import decode, encode

        try:
            table = pd.read_csv(text)
        except (OSError, ValueError) as e:
            raise InvalidParameterError(f"--accuracy {text}: cannot read it as CSV ({e})") from None
        missing = {"spec", "resolution", "top1"} - set(table.columns)
        if missing:
            raise InvalidParameterError(f"--accuracy {text}: missing columns {sorted(missing)}; "
                                        "needs spec, resolution, top1")  # fmt: skip
        known = {(encode(decode(s)), int(r)): float(t) for s, r, t in zip(table.spec, table.resolution, table.top1)}

        def csv_accuracy(spec: str, resolution: int) -> float:
            try:
                return known[(spec, int(resolution))]
            except KeyError:
                raise InvalidParameterError(
                    f"--accuracy {text} has no top1 for spec {spec!r} at resolution {resolution} "
                    f"({len(known)} networks listed): add it, or search a space the file covers"
                ) from None

        csv_accuracy.__name__ = f"csv:{text}"
        return csv_accuracy
    module_name, _, attr = text.rpartition(":")
    if not module_name or not attr:
        raise InvalidParameterError(f"--accuracy {text!r}: give module:function or a .csv file (spec,resolution,top1)")
    try:
        if module_name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except (ImportError, OSError) as e:
        raise InvalidParameterError(f"--accuracy {text!r}: cannot import {module_name!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InvalidParameterError(f"--accuracy {text!r}: {module_name!r} has no function {attr!r}")

    def user_accuracy(spec: str, resolution: int) -> float:
        return float(fn(spec, resolution))

    user_accuracy.__name__ = text
    return user_accuracy


class Reward:
    """What a search maximises: the MnasNet reward of each candidate's accuracy and its latency on
    every device of ``evaluator`` (a ``roofline.search.fasteval.Evaluator``) against ``targets`` (one for
    all devices or one per device: ms, or MAC-equivalents on relative devices), combined over
    devices by ``combine``: "geomean" (default: on the shipped specs it finds networks near every
    device's front, see docs/search.md) or "worst" (the smallest reward: every target binds).
    With the soft constraint a single device's target only scales the reward (the best network does
    not depend on it); across devices the targets weigh the devices against each other.

    ``accuracy(spec, resolution) -> top-1 %`` is the user's own (training or evaluation); None uses
    the labelled proxy, and ``accuracy_source`` says which. Calling it on candidates gives a table:
    ``accuracy``, one latency column per device (``latency_ms:<device>`` or
    ``latency_mac_eq:<device>``) and ``score``; ``objectives`` lists (column, direction) for
    multi-objective strategies: accuracy up, every latency down.
    """

    def __init__(self, evaluator, targets, accuracy=None, combine: str = "geomean", constraint: str = "soft"):
        check_choice(constraint, tuple(CONSTRAINTS), "constraint")
        check_choice(combine, ("worst", "geomean"), "combine")
        self.evaluator, self.combine, self.constraint = evaluator, combine, constraint
        self.targets = np.broadcast_to(np.asarray(targets, dtype=float), (len(evaluator.columns),)).copy()
        if np.any(~(self.targets > 0)):
            raise InvalidParameterError(f"latency targets must be > 0, got {list(self.targets)}")
        self.accuracy = accuracy or proxy_accuracy
        self.accuracy_source = "proxy" if accuracy is None else getattr(accuracy, "__name__", "user")
        self.latency_columns = [
            f"{'latency_mac_eq' if rel else 'latency_ms'}:{name}"
            for name, rel in zip(evaluator.columns, evaluator.relative)
        ]
        self.objectives = [("accuracy", "maximize")] + [(c, "minimize") for c in self.latency_columns]

    def __call__(self, candidates) -> pd.DataFrame:
        acc = np.array([self.accuracy(c.spec, c.resolution) for c in candidates], dtype=float)
        lat = self.evaluator.latency(candidates)
        score = multi_device_reward(acc, lat, self.targets, self.combine, *CONSTRAINTS[self.constraint])
        out = pd.DataFrame(lat, columns=self.latency_columns)
        out.insert(0, "accuracy", acc)
        out["score"] = score
        return out

    def describe(self) -> dict:
        """What produced the scores, for result files: targets, reward settings, accuracy source."""
        return {
            "devices": list(self.evaluator.columns),
            "precision": self.evaluator.precision,
            "targets": [float(t) for t in self.targets],
            "combine": self.combine,
            "constraint": self.constraint,
            "accuracy_source": PROXY_SOURCE if self.accuracy_source == "proxy" else self.accuracy_source,
        }
