"""Extension points found by name: the aggregation rules and the server optimizers.

A :class:`Registry` is filled by a package whose every public module defines one class and decorates
it with :meth:`Registry.register`; :meth:`Registry.build` turns a spec's JSON object into an
instance, refusing an unknown name with the list of known ones. Nothing else lists the names.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Generic, Iterable, TypeVar

from .errors import refuse, show

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes of one kind by ``cls.name``, chosen in a spec by the field ``key`` (e.g. ``"rule"``)."""

    def __init__(self, kind: str, key: str, example: str) -> None:
        self.kind, self.key, self.example = kind, key, example
        self.classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: make ``cls`` available under ``cls.name``."""
        name = getattr(cls, "name", "")
        if not name or name in self.classes:
            raise ValueError(f"{self.kind} name {name!r} missing or taken")
        self.classes[name] = cls
        return cls

    def names(self) -> list[str]:
        return sorted(self.classes)

    def build(self, d: Any, path: str) -> T:
        """The instance ``d`` names (``d[key]``), its parameters checked by the class's ``from_dict``."""
        if not isinstance(d, dict):
            raise refuse(f"{path} must be a JSON object such as {{\"{self.key}\": \"{self.example}\"}}")
        name = d.get(self.key)
        cls = self.classes.get(name) if isinstance(name, str) else None
        if cls is None:
            raise refuse(f"{path}.{self.key}: unknown {self.kind} {show(name, 64)} (known: {', '.join(self.names())})")
        return cls.from_dict(d, path)   # type: ignore[attr-defined]

    @staticmethod
    def discover(package: str, path: Iterable[str]) -> None:
        """Import every public module of ``package`` (each registers its class)."""
        for m in sorted(m.name for m in pkgutil.iter_modules(path)):
            if not m.startswith("_") and m != "base":
                importlib.import_module(f"{package}.{m}")
