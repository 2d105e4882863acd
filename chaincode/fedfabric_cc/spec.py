"""Validation of a training-job spec: every field checked, defaults filled, no floats on the ledger."""
from __future__ import annotations

import re
from typing import Any

from . import codec
from .members import parse_fraction
from .state import fail

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
RULES = ("fedavg", "trimmed_mean", "median", "multi_krum")
MAX_WINDOW_S = 30 * 24 * 3600
MAX_PARAMS = 1 << 26
INT32_MAX = (1 << 31) - 1

TOP = {"job_id", "model", "hyperparams", "rounds", "privacy", "aggregation", "dp", "quorum",
       "min_participants", "windows", "max_abs", "incentives", "frac_bits"}


def no_floats(obj: Any, path: str) -> None:
    """Reject floats anywhere (fixed-point ints or decimal strings instead)."""
    if isinstance(obj, float):
        raise fail(f"{path}: floats are not allowed on the ledger; use an integer (e.g. milli-units) or a decimal string")
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise fail(f"{path}: keys must be strings")
            no_floats(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            no_floats(v, f"{path}[{i}]")


def integer(d: dict, name: str, path: str, lo: int, hi: int, default: Any = None) -> int:
    v = d.get(name, default)
    if v is None:
        raise fail(f"{path}.{name} is required")
    if isinstance(v, bool) or not isinstance(v, int):
        raise fail(f"{path}.{name} must be an integer")
    if not lo <= v <= hi:
        raise fail(f"{path}.{name}={v} out of range [{lo}, {hi}]")
    return v


def hex64(d: dict, name: str, path: str) -> str:
    v = d.get(name)
    if not isinstance(v, str) or not HEX64.match(v):
        raise fail(f"{path}.{name} must be a lowercase hex SHA-256 (64 characters)")
    return v


def text(d: dict, name: str, path: str, pattern: re.Pattern = ID_RE) -> str:
    v = d.get(name)
    if not isinstance(v, str) or not pattern.match(v):
        raise fail(f"{path}.{name} must match {pattern.pattern}")
    return v


def obj(d: dict, name: str, allowed: set[str], required: bool = True) -> dict:
    v = d.get(name)
    if v is None and not required:
        return {}
    if not isinstance(v, dict):
        raise fail(f"spec.{name} must be an object")
    extra = set(v) - allowed
    if extra:
        raise fail(f"spec.{name}: unknown field(s) {', '.join(sorted(extra))}")
    return v


def validate(spec: Any, num_orgs: int) -> dict:
    """A normalized copy of ``spec`` or a ChaincodeError naming the first bad field."""
    if not isinstance(spec, dict):
        raise fail("spec must be a JSON object")
    extra = set(spec) - TOP
    if extra:
        raise fail(f"spec: unknown field(s) {', '.join(sorted(extra))}")
    no_floats(spec, "spec")
    out: dict[str, Any] = {"job_id": text(spec, "job_id", "spec")}

    m = obj(spec, "model", {"arch_id", "arch_hash", "initial_hash", "shape_digest", "num_params"})
    out["model"] = {"arch_id": text(m, "arch_id", "spec.model"), "arch_hash": hex64(m, "arch_hash", "spec.model"),
                    "initial_hash": hex64(m, "initial_hash", "spec.model"),
                    "shape_digest": hex64(m, "shape_digest", "spec.model"),
                    "num_params": integer(m, "num_params", "spec.model", 1, MAX_PARAMS)}

    hp = spec.get("hyperparams", {})
    if not isinstance(hp, dict):
        raise fail("spec.hyperparams must be an object")
    out["hyperparams"] = hp
    out["rounds"] = integer(spec, "rounds", "spec", 1, 10_000)
    privacy = spec.get("privacy")
    if privacy not in ("secure", "clear"):
        raise fail("spec.privacy must be 'secure' or 'clear'")
    out["privacy"] = privacy
    out["frac_bits"] = integer(spec, "frac_bits", "spec", codec.FRAC_BITS, codec.FRAC_BITS, codec.FRAC_BITS)

    a = obj(spec, "aggregation", {"rule", "trim", "krum_f", "krum_m"})
    rule = a.get("rule")
    if rule not in RULES:
        raise fail(f"spec.aggregation.rule must be one of {', '.join(RULES)}")
    if privacy == "secure" and rule != "fedavg":
        raise fail(f"spec.aggregation.rule '{rule}' needs visible updates: secure mode supports only fedavg")
    agg: dict[str, Any] = {"rule": rule}
    min_needed = 2 if privacy == "secure" else 1
    if rule == "trimmed_mean":
        agg["trim"] = integer(a, "trim", "spec.aggregation", 1, 1000)
        min_needed = max(min_needed, 2 * agg["trim"] + 1)
    elif rule == "multi_krum":
        agg["krum_f"] = integer(a, "krum_f", "spec.aggregation", 0, 1000)
        min_needed = max(min_needed, 2 * agg["krum_f"] + 3)
        if "krum_m" in a:
            agg["krum_m"] = integer(a, "krum_m", "spec.aggregation", 1, 1000)
    elif set(a) - {"rule"}:
        raise fail(f"spec.aggregation: rule '{rule}' takes no parameters")
    out["aggregation"] = agg

    dp = obj(spec, "dp", {"enabled", "clip_norm_milli", "noise_multiplier_milli", "epsilon_budget_milli", "delta_exp"},
             required=False)
    enabled = dp.get("enabled", False)
    if not isinstance(enabled, bool):
        raise fail("spec.dp.enabled must be true or false")
    out["dp"] = {"enabled": enabled}
    if enabled:
        out["dp"].update({"clip_norm_milli": integer(dp, "clip_norm_milli", "spec.dp", 1, 10**9),
                          "noise_multiplier_milli": integer(dp, "noise_multiplier_milli", "spec.dp", 0, 10**9),
                          "epsilon_budget_milli": integer(dp, "epsilon_budget_milli", "spec.dp", 1, 10**9),
                          "delta_exp": integer(dp, "delta_exp", "spec.dp", 1, 30, 5)})

    num, den = parse_fraction(spec.get("quorum", ""))
    out["quorum"] = [num, den]
    out["min_participants"] = integer(spec, "min_participants", "spec", 1, 1000)
    if out["min_participants"] < min_needed:
        raise fail(f"spec.min_participants={out['min_participants']} is too small: "
                   f"{privacy} mode with rule {rule} needs at least {min_needed}")
    if out["min_participants"] > num_orgs:
        raise fail(f"spec.min_participants={out['min_participants']} exceeds the {num_orgs} member orgs")

    w = obj(spec, "windows", {"registration_s", "submission_s", "approval_s"})
    out["windows"] = {n: integer(w, n, "spec.windows", 1, MAX_WINDOW_S)
                      for n in ("registration_s", "submission_s", "approval_s")}
    out["max_abs"] = integer(spec, "max_abs", "spec", 1, INT32_MAX, INT32_MAX)

    inc = obj(spec, "incentives", {"reward_per_round", "slash_absent", "slash_anomalous", "anomaly_factor"},
              required=False)
    out["incentives"] = {"reward_per_round": integer(inc, "reward_per_round", "spec.incentives", 0, 10**12, 0),
                         "slash_absent": integer(inc, "slash_absent", "spec.incentives", 0, 10**12, 0),
                         "slash_anomalous": integer(inc, "slash_anomalous", "spec.incentives", 0, 10**12, 0),
                         "anomaly_factor": integer(inc, "anomaly_factor", "spec.incentives", 1, 1000, 3)}
    return out
