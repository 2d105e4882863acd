"""How a running node shows itself: a live status line on a terminal, plain log lines otherwise.

:class:`StatusLine` is the :class:`~fedfabric.node.runtime.OrgNode` progress hook. On a terminal it
keeps one line (rich) at the bottom — org, job, round, round state, what the node is doing — while
the log lines scroll above it. Without a terminal (a log file, a pipe, CI) it does nothing and the
log lines are all there is. Nothing it shows comes from a payload or a key.
"""
from __future__ import annotations

import logging
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StatusLine:
    """Progress hook rendering ``org · job · round r/R · state · doing`` into a rich status line."""

    def __init__(self, org: str, job: str, console: Any = None, live: bool | None = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal if live is None else live
        self.org, self.job = org, job
        self.fields: dict[str, Any] = {"round": 0, "rounds": "?", "state": "starting", "doing": "connecting"}
        self._status: Any = None

    def text(self) -> str:
        """The status line as plain text (markup-free)."""
        f = self.fields
        rnd = f"round {f['round']}/{f['rounds']}" if f["round"] else "no round yet"
        return f"{self.org} · job {self.job} · {rnd} · {f['state']} · {f['doing']}"

    def __call__(self, what: str, info: dict) -> None:
        if what == "state":
            if info.get("round") != self.fields["round"] or info.get("state") != self.fields["state"]:
                self.fields["doing"] = "…"
            self.fields.update({k: info[k] for k in ("round", "rounds", "state") if k in info})
        elif what == "doing":
            self.fields["doing"] = info.get("text", "")
        elif what == "problem":
            self.fields["doing"] = f"retrying: {str(info.get('text', ''))[:80]}"
        else:   # a completed action (the same words as the log line)
            self.fields["doing"] = what
        if self._status is not None:
            from rich.markup import escape

            self._status.update(escape(self.text()))

    def __enter__(self) -> "StatusLine":
        if self.live:
            from rich.markup import escape

            self._status = self.console.status(escape(self.text()), spinner="dots")
            self._status.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
            self._status = None


def setup_logging(status: StatusLine) -> None:
    """Log lines to stderr: through rich (above the live line) on a terminal, plain otherwise."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_fedfabric_node", False):   # ours from an earlier call; other handlers stay
            root.removeHandler(h)
    if status.live:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=status.console, show_path=False, markup=False,
                                               rich_tracebacks=False, log_time_format="%H:%M:%S")
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler._fedfabric_node = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("fedfabric.ledger").setLevel(logging.WARNING)
