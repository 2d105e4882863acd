"""A training node's own Prometheus metrics (``fedfabric node --metrics-port``).

Each node keeps its metrics in a registry of its own and, when asked, serves them over HTTP at
``http://<host>:<port>/metrics`` (127.0.0.1 by default; port 0 picks a free one). The node
announces a served endpoint in ``<run-dir>/fl/metrics/<org>.<job>.json`` while it runs, which is how
``network.sh status`` lists it. Everything is labelled by what it counts, never by values a scrape
would make unbounded; the org and the job are in ``fedfabric_node_info``.

==============================================  ==========================================================
metric                                          what
==============================================  ==========================================================
``fedfabric_node_info``                         org, MSP id, job, fedfabric version
``fedfabric_node_round``                        the round the node is in
``fedfabric_node_job_rounds``                   the job's rounds
``fedfabric_node_phase``                        the round's phase as this node sees it (an enum)
``fedfabric_node_job_completed``                1 once the job completed
``fedfabric_node_rounds_total{outcome}``        rounds this node saw close (finalized, failed)
``fedfabric_node_updates_submitted_total``      this org's updates the ledger accepted
``fedfabric_node_votes_total{approve}``         this org's ballots the ledger accepted
``fedfabric_node_duty_seconds{duty}``           how long each duty took (register, start, train, submit,
                                                reveal, compute, vote, finalize)
``fedfabric_node_phase_seconds{phase}``         how long each phase of a round lasted, as seen here
``fedfabric_node_sent_bytes_total{channel}``    update bytes sent: in submissions, served to other nodes
``fedfabric_node_received_bytes_total{channel}``  update bytes received: from the peer, from other nodes
``fedfabric_node_transactions_total{function,   ledger writes by contract function and outcome (ok,
outcome}``                                      conflict, transient, refused)
``fedfabric_node_retries_total{reason}``        steps that failed for a reason that may pass and are retried
``fedfabric_node_problems_total{level}``        problems reported (warnings, errors)
``fedfabric_node_last_error_info{level,         the last problem, its text cut to 200 characters (the same
message}``                                      text the log has: never keys or payloads)
``fedfabric_node_last_error_timestamp_seconds``   when it happened
==============================================  ==========================================================
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, start_http_server

from fedfabric_protocol.states import Phase

DUTIES = ("register", "start", "train", "submit", "reveal", "compute", "vote", "finalize")
DUTY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
PHASE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
MAX_ERROR_TEXT = 200
ENDPOINTS_DIR = ("fl", "metrics")   # under the run directory


class NodeMetrics:
    """The metrics of ``msp_id``'s node for ``job_id``, in a registry of their own."""

    def __init__(self, msp_id: str, job_id: str, org: str = "") -> None:
        from .. import __version__

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Info("fedfabric_node", "The org and job this training node serves.", registry=r).info(
            {"org": org or msp_id, "msp_id": msp_id, "job": job_id, "version": __version__})
        self.round = Gauge("fedfabric_node_round", "The round the node is in.", registry=r)
        self.job_rounds = Gauge("fedfabric_node_job_rounds", "Rounds of the job.", registry=r)
        self.phase = Enum("fedfabric_node_phase", "The current round's phase as this node sees it.",
                          states=[p.value for p in Phase], registry=r)
        self.completed = Gauge("fedfabric_node_job_completed", "1 once the job completed.", registry=r)
        self.rounds = Counter("fedfabric_node_rounds", "Rounds this node saw close.", ["outcome"], registry=r)
        self.updates = Counter("fedfabric_node_updates_submitted", "This org's updates the ledger accepted.",
                               registry=r)
        self.votes = Counter("fedfabric_node_votes", "This org's ballots the ledger accepted.", ["approve"],
                             registry=r)
        self.duties = Histogram("fedfabric_node_duty_seconds", "Duration of the node's duties.", ["duty"],
                                buckets=DUTY_BUCKETS, registry=r)
        self.phases = Histogram("fedfabric_node_phase_seconds", "How long each phase of a round lasted, as seen "
                                "by this node.", ["phase"], buckets=PHASE_BUCKETS, registry=r)
        self.sent_bytes = Counter("fedfabric_node_sent_bytes", "Update bytes sent (in submissions, served to other "
                                  "nodes).", ["channel"], registry=r)
        self.received_bytes = Counter("fedfabric_node_received_bytes", "Update bytes received (from the peer, "
                                      "from other nodes).", ["channel"], registry=r)
        self.transactions = Counter("fedfabric_node_transactions", "Ledger writes by function and outcome.",
                                    ["function", "outcome"], registry=r)
        self.retries = Counter("fedfabric_node_retries", "Steps retried after a failure that may pass.", ["reason"],
                               registry=r)
        self.problems = Counter("fedfabric_node_problems", "Problems reported.", ["level"], registry=r)
        self.last_error = Info("fedfabric_node_last_error", "The last problem reported.", registry=r)
        self.last_error.info({"level": "none", "message": ""})
        self.last_error_time = Gauge("fedfabric_node_last_error_timestamp_seconds", "When the last problem was "
                                     "reported.", registry=r)
        for d in DUTIES:   # every series exists from the start, at 0
            self.duties.labels(d)
        for c in ("submission", "exchange"):
            self.sent_bytes.labels(c)
        for c in ("peer", "exchange"):
            self.received_bytes.labels(c)
        self._lock = threading.Lock()
        self._phase: Optional[tuple[int, str, float]] = None   # (round, phase, since), monotonic
        self._closed: set[int] = set()
        self._server: Any = None
        self._endpoint_file: Optional[Path] = None
        self.url: Optional[str] = None

    # ---- what the runtime reports
    def observe(self, what: str, info: dict) -> None:
        """One progress report of the node (the same stream its status line shows)."""
        if what == "state":
            self._state(info)
        elif what == "round closed":
            r = info.get("round")
            if isinstance(r, int) and r not in self._closed:
                self._closed.add(r)
                self.rounds.labels("finalized" if info.get("state") == "finalized" else "failed").inc()
                self._state({"round": r, "state": Phase.CLOSED.value})
        elif what == "update submitted":
            self.updates.inc()
        elif what == "voted":
            self.votes.labels(str(bool(info.get("approve"))).lower()).inc()
        elif what == "job complete":
            self.completed.set(1)

    def _state(self, info: dict) -> None:
        r, state = info.get("round"), info.get("state")
        if not isinstance(r, int):
            return
        self.round.set(r)
        if isinstance(info.get("rounds"), int):
            self.job_rounds.set(info["rounds"])
        phase = state if state in {p.value for p in Phase} else None
        if phase is None:   # a round state (e.g. finalized) rather than a phase: the round is over
            phase = Phase.CLOSED.value if state in ("finalized", "failed") else None
        if phase is None:
            return
        now = time.monotonic()
        with self._lock:
            prev = self._phase
            if prev is not None and (prev[0], prev[1]) == (r, phase):
                return
            if prev is not None and prev[1] != Phase.CLOSED.value:
                self.phases.labels(prev[1]).observe(now - prev[2])
            self._phase = (r, phase, now)
        self.phase.state(phase)

    @contextmanager
    def duty(self, name: str) -> Iterator[None]:
        """Time one duty (``name`` in :data:`DUTIES`)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.duties.labels(name).observe(time.perf_counter() - t0)

    def sent(self, channel: str, n: int) -> None:
        """``n`` update bytes sent on ``channel`` (submission, exchange)."""
        self.sent_bytes.labels(channel).inc(n)

    def received(self, channel: str, n: int) -> None:
        """``n`` update bytes received on ``channel`` (peer, exchange)."""
        self.received_bytes.labels(channel).inc(n)

    def transaction(self, function: str, outcome: str) -> None:
        """A ledger write of ``function`` ended with ``outcome`` (ok, conflict, transient, refused)."""
        self.transactions.labels(function, outcome).inc()

    def retry(self, reason: str) -> None:
        """A step failed for ``reason`` and is retried on the next tick."""
        self.retries.labels(reason).inc()

    def problem(self, level: int, text: str) -> None:
        """A problem the node reports (already fit for its log)."""
        name = logging.getLevelName(level).lower()
        self.problems.labels(name).inc()
        if level >= logging.WARNING:
            self.last_error.info({"level": name, "message": " ".join(text.split())[:MAX_ERROR_TEXT]})
            self.last_error_time.set(time.time())

    # ---- serving
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve ``/metrics`` on ``host:port`` (0: a free port); returns its URL."""
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        bound = self._server.server_port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound}/metrics"
        return self.url

    def announce(self, run_dir: Path, org: str, msp_id: str, job_id: str) -> Path:
        """Record the served endpoint in the run directory (``network.sh status`` lists it) until :meth:`close`."""
        d = Path(run_dir).joinpath(*ENDPOINTS_DIR)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{org}.{job_id}.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"org": org, "msp_id": msp_id, "job": job_id, "url": self.url, "pid": os.getpid(),
                                   "started": int(time.time())}, sort_keys=True))
        os.replace(tmp, path)
        self._endpoint_file = path
        return path

    def close(self) -> None:
        """Stop serving and withdraw the announcement."""
        if self._endpoint_file is not None:
            try:
                if json.loads(self._endpoint_file.read_text()).get("pid") == os.getpid():
                    self._endpoint_file.unlink()
            except (OSError, ValueError):
                pass
            self._endpoint_file = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def known_endpoints(run_dir: Path) -> list[dict]:
    """The node metrics endpoints announced in ``run_dir``: org, msp_id, job, url, pid and ``up`` (its process
    is alive), sorted by org and job."""
    d = Path(run_dir).joinpath(*ENDPOINTS_DIR)
    out = []
    for p in sorted(d.glob("*.json")) if d.is_dir() else ():
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("url"), str):
            out.append({**rec, "up": _alive(rec.get("pid"))})
    return sorted(out, key=lambda e: (str(e.get("org")), str(e.get("job"))))


__all__ = ["DUTIES", "NodeMetrics", "known_endpoints"]
