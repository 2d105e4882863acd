"""What every benchmark script ends with: its results as sorted JSON under benchmarks/results/."""
from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console


def write_results(doc: dict, out: Path, console: Console) -> None:
    """Write ``doc`` to ``out`` (its folder made if missing) and say where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    console.print(f"wrote {out}")
