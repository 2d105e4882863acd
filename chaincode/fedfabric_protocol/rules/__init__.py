"""Aggregation rules: every module of this package defines one rule and registers it by name.

``rule_from_dict({"rule": "median"})`` is the only way the chaincode, the job-file parser, the
in-process simulation and the benchmarks get a rule; an unknown name is refused with the list of
known ones. Adding a rule is adding one module here (and its tests).
"""
from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import RULES, Outcome, Param, Rule, linear_rule_names

Registry.discover(__name__, __path__)


def rule_names() -> list[str]:
    return RULES.names()


def rule_from_dict(d: Any, path: str = "spec.aggregation") -> Rule:
    """The rule named by ``d["rule"]`` with its parameters checked."""
    return RULES.build(d, path)


__all__ = ["RULES", "Outcome", "Param", "Rule", "linear_rule_names", "rule_from_dict", "rule_names"]
