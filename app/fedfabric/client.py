"""Typed client for the fedfabric contract: one method per transaction, JSON in and out.

``FedFabricClient(contract)`` wraps a :class:`fedfabric.ledger.Contract` bound to the ``fedfabric``
chaincode. Writes go through ``submit`` (endorse → order → commit) and return the decoded result;
reads go through ``evaluate``. A chaincode rejection becomes :class:`Rejected` carrying the
contract's own message (e.g. ``wrong round: job j1 is at round 2, not 1``) and the peer that said it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import grpc

from .ledger import CommitError, Contract, EndorseError, EvaluateError, GatewayError
from .ledger.contract import SubmitResult

CHAINCODE = "fedfabric"
_STATUS_RE = re.compile(r"chaincode response (\d{3}), (.*)", re.S)


class Rejected(Exception):
    """The contract refused a transaction; ``message`` is its reason, ``status`` its HTTP-like code."""

    def __init__(self, function: str, message: str, status: int | None, peer: str = "") -> None:
        where = f" (peer {peer})" if peer else ""
        super().__init__(f"{function}: {message}{where}")
        self.function, self.message, self.status, self.peer = function, message, status, peer


def _rejection(function: str, err: GatewayError) -> Exception:
    """A :class:`Rejected` when the peers ran the chaincode and it said no; else ``err`` itself."""
    texts = [(d.message, f"{d.address} ({d.msp_id})") for d in err.details] or [(err.message, "")]
    for text, peer in texts:
        m = _STATUS_RE.search(text or "")
        if m:
            return Rejected(function, m.group(2).strip(), int(m.group(1)), peer)
    if err.code in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNKNOWN) and texts[0][0]:
        return Rejected(function, texts[0][0], None, texts[0][1])
    return err


@dataclass(frozen=True)
class Written:
    """A committed write: the contract's decoded result and where it landed."""

    value: Any
    tx_id: str
    block_number: int


def update_meta(payload: bytes, shape_digest: str, sample_count: int, training: Mapping[str, Any],
                metrics: Mapping[str, int] | None = None, dp_epsilon_milli: int | None = None) -> dict:
    """The public record of an update whose bytes travel privately (hash, size, shape, training facts)."""
    meta = {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload), "shape_digest": shape_digest,
            "sample_count": int(sample_count), "dtype": "uint32le", "training": dict(training),
            "metrics": dict(metrics or {})}
    if dp_epsilon_milli is not None:
        meta["dp_epsilon_milli"] = int(dp_epsilon_milli)
    return meta


class FedFabricClient:
    """One org identity's view of the consortium contract."""

    def __init__(self, contract: Contract, *, retries: int = 12, retry_delay: float = 0.5) -> None:
        self.contract = contract
        self.retries = retries
        self.retry_delay = retry_delay

    # ---- plumbing
    def _submit(self, fn: str, *args: Any, transient: Mapping[str, bytes] | None = None) -> Written:
        """Submit with retries for transient conditions (endorsers not yet known, MVCC conflicts)."""
        raw = [a if isinstance(a, (str, bytes)) else json.dumps(a, sort_keys=True, separators=(",", ":"))
               for a in args]
        for attempt in range(self.retries + 1):
            try:
                res: SubmitResult = self.contract.submit(fn, args=raw, transient=transient)
                return Written(json.loads(res.result) if res.result else None, res.tx_id, res.block_number)
            except CommitError as err:
                if err.code == "MVCC_READ_CONFLICT" and attempt < self.retries:
                    time.sleep(self.retry_delay)
                    continue
                raise
            except EndorseError as err:
                rej = _rejection(fn, err)
                if isinstance(rej, Rejected):
                    raise rej from None
                if err.code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAVAILABLE) \
                        and attempt < self.retries:
                    # endorsers not known yet (gossip still connecting after start-up): back off
                    time.sleep(min(self.retry_delay * (attempt + 1), 3.0))
                    continue
                raise
        raise AssertionError("unreachable")

    def _evaluate(self, fn: str, *args: Any) -> Any:
        raw = [a if isinstance(a, (str, bytes)) else json.dumps(a, sort_keys=True, separators=(",", ":"))
               for a in args]
        try:
            out = self.contract.evaluate(fn, args=raw)
        except EvaluateError as err:
            raise _rejection(fn, err) from None
        return json.loads(out) if out else None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the chaincode answers a query on this peer."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.contract.evaluate("org.hyperledger.fabric:GetMetadata")
                return
            except GatewayError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)

    # ---- members and stake
    def init_consortium(self, orgs: list[dict], quorum: str) -> Written:
        return self._submit("init_consortium", orgs, quorum)

    def transfer_stake(self, to_msp: str, amount: int) -> Written:
        return self._submit("transfer_stake", to_msp, str(amount))

    def propose_stake_adjustment(self, proposal_id: str, msp_id: str, delta: int, reason: str) -> Written:
        return self._submit("propose_stake_adjustment", proposal_id, msp_id, str(delta), reason)

    def approve_stake_adjustment(self, proposal_id: str) -> Written:
        return self._submit("approve_stake_adjustment", proposal_id)

    def propose_status_change(self, proposal_id: str, msp_id: str, status: str, reason: str) -> Written:
        """Propose suspending (``"suspended"``) or reinstating (``"active"``) an org; applied at the stake quorum."""
        return self._submit("propose_status_change", proposal_id, msp_id, status, reason)

    def approve_status_change(self, proposal_id: str) -> Written:
        return self._submit("approve_status_change", proposal_id)

    def get_org(self, msp_id: str) -> dict:
        return self._evaluate("get_org", msp_id)

    def list_orgs(self) -> list[dict]:
        return self._evaluate("list_orgs")

    def org_history(self, msp_id: str) -> list[dict]:
        return self._evaluate("org_history", msp_id)

    def get_policy(self) -> dict:
        return self._evaluate("get_policy")

    # ---- jobs and rounds
    def create_job(self, spec: dict) -> Written:
        return self._submit("create_job", spec)

    def get_job(self, job_id: str) -> dict:
        return self._evaluate("get_job", job_id)

    def list_jobs(self, page_size: int = 100, bookmark: str = "") -> dict:
        return self._evaluate("list_jobs", str(page_size), bookmark)

    def open_round(self, job_id: str) -> Written:
        return self._submit("open_round", job_id)

    def start_registration(self, job_id: str, round_: int) -> Written:
        return self._submit("start_registration", job_id, str(round_))

    def register(self, job_id: str, round_: int, public_key: bytes) -> Written:
        return self._submit("register", job_id, str(round_), public_key.hex())

    def close_registration(self, job_id: str, round_: int) -> Written:
        return self._submit("close_registration", job_id, str(round_))

    def expire_round(self, job_id: str, round_: int) -> Written:
        """Fail a round stuck past its current deadline (registration never started or too few registered,
        seeds not revealed or not aggregated in time, no approval quorum by the approval deadline)."""
        return self._submit("expire_round", job_id, str(round_))

    def get_round(self, job_id: str, round_: int) -> dict:
        return self._evaluate("get_round", job_id, str(round_))

    def list_rounds(self, job_id: str) -> list[dict]:
        return self._evaluate("list_rounds", job_id)

    def submit_update(self, job_id: str, round_: int, meta: dict, payload: bytes) -> Written:
        """Post ``meta`` publicly; ``payload`` goes through the transient map into the private collection."""
        return self._submit("submit_update", job_id, str(round_), meta, transient={"update": payload})

    def reveal_seeds(self, job_id: str, round_: int, seeds: Mapping[str, bytes]) -> Written:
        body = json.dumps({m: s.hex() for m, s in sorted(seeds.items())}).encode()
        return self._submit("reveal_seeds", job_id, str(round_), transient={"seeds": body})

    def aggregate(self, job_id: str, round_: int) -> Written:
        return self._submit("aggregate", job_id, str(round_))

    def get_aggregate(self, job_id: str, round_: int) -> tuple[dict, bytes]:
        """The aggregate's record and its bytes, checked against the hash on the ledger."""
        rec = self._evaluate("get_aggregate", job_id, str(round_))
        data = base64.b64decode(rec.pop("data_b64"))
        got = hashlib.sha256(data).hexdigest()
        if got != rec["aggregate_hash"]:
            raise ValueError(f"aggregate of round {round_} hashes to {got}, the ledger says {rec['aggregate_hash']}")
        return rec, data

    def vote(self, job_id: str, round_: int, approve: bool, model_hash: str | None, metrics: Mapping[str, int]) -> Written:
        return self._submit("vote", job_id, str(round_),
                            {"approve": bool(approve), "model_hash": model_hash, "metrics": dict(metrics)})

    def finalize_round(self, job_id: str, round_: int) -> Written:
        return self._submit("finalize_round", job_id, str(round_))

    # ---- versions and lineage
    def get_version(self, job_id: str, ref: str | int = "latest") -> dict:
        return self._evaluate("get_version", job_id, str(ref))

    def list_versions(self, job_id: str) -> list[dict]:
        return self._evaluate("list_versions", job_id)

    def set_alias(self, job_id: str, alias: str, version: int) -> Written:
        return self._submit("set_alias", job_id, alias, str(version))

    def list_aliases(self, job_id: str) -> dict:
        return self._evaluate("list_aliases", job_id)

    def set_tag(self, job_id: str, version: int, tag: str, value: str) -> Written:
        return self._submit("set_tag", job_id, str(version), tag, value)

    def lineage(self, job_id: str, ref: str | int = "latest") -> list[dict]:
        return self._evaluate("lineage", job_id, str(ref))

    def compare_versions(self, job_id: str, a: str | int, b: str | int) -> dict:
        return self._evaluate("compare_versions", job_id, str(a), str(b))

    # ---- audit
    def round_report(self, job_id: str, round_: int) -> dict:
        return self._evaluate("round_report", job_id, str(round_))

    def org_report(self, msp_id: str) -> dict:
        return self._evaluate("org_report", msp_id)

    def key_history(self, object_type: str, attrs: list[str]) -> list[dict]:
        return self._evaluate("key_history", object_type, attrs)


def open_client(org: str, user: str = "User1", *, config: Any = None, run_root: Any = None,
                chaincode: str = CHAINCODE, **gateway_options: Any) -> tuple[Any, FedFabricClient]:
    """(gateway, client) for ``org`` as ``user`` on the consortium's channel; close the gateway when done."""
    from .connect import _layout, connect

    layout = _layout(config, run_root)
    gw = connect(org, user, config=layout.config, run_root=layout.root, **gateway_options)
    return gw, FedFabricClient(gw.get_network(layout.config.channel).get_contract(chaincode))


def iter_events(gateway: Any, channel: str, start_block: int | None = None, after_tx_id: str | None = None,
                chaincode: str = CHAINCODE) -> Iterator[Any]:
    """The contract's events (name, decoded payload, block, tx) from ``start_block`` on."""
    stream = gateway.get_network(channel).chaincode_events(chaincode, start_block=start_block, after_tx_id=after_tx_id)
    return stream


ProgressFn = Callable[[str], None]
