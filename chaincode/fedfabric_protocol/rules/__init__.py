"""Aggregation rules: every module of this package defines one rule and registers it by name.

``rule_from_dict({"rule": "median"})`` is the only way the chaincode, the job-file parser, the
in-process simulation and the benchmarks get a rule; an unknown name is refused with the list of
known ones. Adding a rule is adding one module here (and its tests).
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from ..errors import refuse, show
from .base import REGISTRY, Outcome, Param, Rule, linear_rule_names

for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _m.startswith("_") and _m != "base":
        importlib.import_module(f"{__name__}.{_m}")


def rule_names() -> list[str]:
    return sorted(REGISTRY)


def rule_from_dict(d: Any, path: str = "spec.aggregation") -> Rule:
    """The rule named by ``d["rule"]`` with its parameters checked."""
    if not isinstance(d, dict):
        raise refuse(f"{path} must be a JSON object such as {{\"rule\": \"fedavg\"}}")
    name = d.get("rule")
    cls = REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise refuse(f"{path}.rule: unknown rule {show(name, 64)} (known: {', '.join(rule_names())})")
    return cls.from_dict(d, path)


__all__ = ["Outcome", "Param", "Rule", "linear_rule_names", "rule_from_dict", "rule_names"]
