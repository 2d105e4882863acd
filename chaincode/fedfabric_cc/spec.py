"""Validation of a training-job spec: every field checked, defaults filled, no floats on the ledger."""
from __future__ import annotations

import re
from typing import Any

from . import codec
from .members import ACTIVE, parse_fraction, stakes
from .state import fail

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
RULES = ("fedavg", "trimmed_mean", "median", "multi_krum")
MAX_WINDOW_S = 30 * 24 * 3600
MAX_PARAMS = 1 << 26
INT32_MAX = codec.INT32_MAX
MIN_DEFAULT_REVEAL_S = 60

TOP = {"job_id", "model", "hyperparams", "rounds", "privacy", "aggregation", "dp", "quorum",
       "min_participants", "participants", "windows", "max_abs", "incentives", "frac_bits"}


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


def validate(spec: Any, orgs: dict[str, dict]) -> dict:
    """A normalized copy of ``spec`` or a ChaincodeError naming the first bad field (``orgs``: the members)."""
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
    out["aggregation"] = _aggregation(spec, privacy)
    out["dp"] = _dp(spec)
    num, den = parse_fraction(spec.get("quorum", ""))
    out["quorum"] = [num, den]
    out["min_participants"] = integer(spec, "min_participants", "spec", 1, 1000)
    out["participants"] = _participants(spec, orgs, out["min_participants"])
    _check_feasible(out["aggregation"], privacy, out["min_participants"])
    out["windows"] = _windows(spec)
    out["max_abs"] = integer(spec, "max_abs", "spec", 1, INT32_MAX, INT32_MAX)
    out["incentives"] = _incentives(spec)
    return out


def _aggregation(spec: dict, privacy: str) -> dict:
    a = obj(spec, "aggregation", {"rule", "trim", "krum_f", "krum_m"})
    rule = a.get("rule")
    if rule not in RULES:
        raise fail(f"spec.aggregation.rule must be one of {', '.join(RULES)}")
    if privacy == "secure" and rule != "fedavg":
        raise fail(f"spec.aggregation.rule '{rule}' needs visible updates: secure mode supports only fedavg")
    agg: dict[str, Any] = {"rule": rule}
    if rule == "trimmed_mean":
        agg["trim"] = integer(a, "trim", "spec.aggregation", 1, 1000)
    elif rule == "multi_krum":
        agg["krum_f"] = integer(a, "krum_f", "spec.aggregation", 0, 1000)
        if "krum_m" in a:
            agg["krum_m"] = integer(a, "krum_m", "spec.aggregation", 1, 1000)
    elif set(a) - {"rule"}:
        raise fail(f"spec.aggregation: rule '{rule}' takes no parameters")
    return agg


def _check_feasible(agg: dict, privacy: str, min_p: int) -> None:
    """Every round that reaches ``min_p`` updates can apply the rule (checked here, not at aggregation)."""
    if privacy == "secure" and min_p < 2:
        raise fail(f"spec.min_participants={min_p} is too small: secure mode with rule fedavg needs at least 2")
    if agg["rule"] == "trimmed_mean" and min_p <= 2 * agg["trim"]:
        raise fail(f"spec.aggregation.trim={agg['trim']} needs at least {2 * agg['trim'] + 1} participants "
                   f"(more than 2*trim updates), min_participants is {min_p}")
    if agg["rule"] == "multi_krum":
        f = agg["krum_f"]
        if min_p < 2 * f + 3:
            raise fail(f"spec.aggregation.krum_f={f} needs at least {2 * f + 3} participants "
                       f"(Multi-Krum: n > 2f+2 updates), min_participants is {min_p}")
        if "krum_m" in agg and agg["krum_m"] > min_p - f:
            raise fail(f"spec.aggregation.krum_m={agg['krum_m']} must be at most min_participants - krum_f "
                       f"= {min_p - f}")


def _participants(spec: dict, orgs: dict[str, dict], min_p: int) -> list[str]:
    """The job's participants, sorted: the given member MSP ids, else every active member with stake."""
    if "participants" not in spec:
        out = sorted(m for m, s in stakes(orgs).items() if s > 0)
        if len(out) < min_p:
            raise fail(f"spec.min_participants={min_p} exceeds the {len(out)} active member orgs with stake")
        return out
    given = spec["participants"]
    if not isinstance(given, list) or not all(isinstance(p, str) for p in given):
        raise fail("spec.participants must be a list of member MSP ids")
    for p in given:
        if p not in orgs:
            raise fail(f"spec.participants: {p} is not a member of the consortium")
        if orgs[p]["status"] != ACTIVE:
            raise fail(f"spec.participants: {p} is {orgs[p]['status']}, not active")
    dup = sorted({p for p in given if given.count(p) > 1})
    if dup:
        raise fail(f"spec.participants lists {', '.join(dup)} more than once")
    if len(given) < min_p:
        raise fail(f"spec.participants has {len(given)} orgs, fewer than spec.min_participants={min_p}")
    return sorted(given)


def _dp(spec: dict) -> dict:
    dp = obj(spec, "dp", {"enabled", "clip_norm_milli", "noise_multiplier_milli", "epsilon_budget_milli", "delta_exp"},
             required=False)
    enabled = dp.get("enabled", False)
    if not isinstance(enabled, bool):
        raise fail("spec.dp.enabled must be true or false")
    out: dict[str, Any] = {"enabled": enabled}
    if enabled:
        out.update({"clip_norm_milli": integer(dp, "clip_norm_milli", "spec.dp", 1, 10**9),
                    "noise_multiplier_milli": integer(dp, "noise_multiplier_milli", "spec.dp", 0, 10**9),
                    "epsilon_budget_milli": integer(dp, "epsilon_budget_milli", "spec.dp", 1, 10**9),
                    "delta_exp": integer(dp, "delta_exp", "spec.dp", 1, 30, 5)})
    return out


def _windows(spec: dict) -> dict:
    """Registration, submission, seed-reveal (after submission; default max(submission_s, 60)) and approval."""
    w = obj(spec, "windows", {"registration_s", "submission_s", "reveal_s", "approval_s"})
    out = {n: integer(w, n, "spec.windows", 1, MAX_WINDOW_S) for n in ("registration_s", "submission_s", "approval_s")}
    default_reveal = min(MAX_WINDOW_S, max(out["submission_s"], MIN_DEFAULT_REVEAL_S))
    out["reveal_s"] = integer(w, "reveal_s", "spec.windows", 1, MAX_WINDOW_S, default_reveal)
    return out


def _incentives(spec: dict) -> dict:
    inc = obj(spec, "incentives", {"reward_per_round", "slash_absent", "slash_anomalous", "slash_no_reveal",
                                   "anomaly_factor"}, required=False)
    out = {n: integer(inc, n, "spec.incentives", 0, 10**12, 0)
           for n in ("reward_per_round", "slash_absent", "slash_anomalous")}
    out["slash_no_reveal"] = integer(inc, "slash_no_reveal", "spec.incentives", 0, 10**12, out["slash_absent"])
    out["anomaly_factor"] = integer(inc, "anomaly_factor", "spec.incentives", 1, 1000, 3)
    return out
