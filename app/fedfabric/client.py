"""Typed client for the fedfabric contract: one method per transaction, JSON in and out.

``FedFabricClient(contract, msp_id)`` wraps a :class:`fedfabric.ledger.Contract` bound to the
``fedfabric`` chaincode. Writes go through ``submit`` (endorse → order → commit) and return the
decoded result; reads go through ``evaluate``. A chaincode rejection becomes :class:`Rejected`
carrying the contract's own message (e.g. ``wrong round: job j1 is at round 2, not 1``) and the peer
that said it.

Writes are endorsed in parallel by an explicit winning coalition that contains the caller's org
(:class:`Coalition`), instead of the Gateway's default of the local org first and then the others
one after another.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import grpc

from fedfabric_protocol import stakerule
from fedfabric_protocol.records import Ballot, RoundRecord
from fedfabric_protocol.states import Transient

from .ledger import CommitError, Contract, EndorseError, EvaluateError, GatewayError
from .ledger.contract import SubmitResult

CHAINCODE = "fedfabric"
_STATUS_RE = re.compile(r"chaincode response (\d{3}), (.*)", re.S)


class Rejected(Exception):
    """The contract refused a transaction; ``message`` is its reason, ``status`` its HTTP-like code."""

    def __init__(self, function: str, message: str, status: int | None, peer: str = "", tx_id: str = "") -> None:
        where = f" (peer {peer})" if peer else ""
        super().__init__(f"{function}: {message}{where}")
        self.function, self.message, self.status, self.peer, self.tx_id = function, message, status, peer, tx_id


_DISAGREE = "ProposalResponsePayloads do not match"   # the Gateway's words when endorsers' results differ


def _rejection(function: str, err: GatewayError) -> Exception:
    """A :class:`Rejected` when the peers ran the chaincode and it said no; else ``err`` itself."""
    texts = [(d.message, f"{d.address} ({d.msp_id})") for d in err.details] or [(err.message, "")]
    for text, peer in texts:
        m = _STATUS_RE.search(text or "")
        if m:
            return Rejected(function, m.group(2).strip(), int(m.group(1)), peer, err.tx_id or "")
    if err.code in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNKNOWN) and texts[0][0]:
        return Rejected(function, texts[0][0], None, texts[0][1], err.tx_id or "")
    return err


@dataclass(frozen=True)
class Written:
    """A committed write: the contract's decoded result and where it landed."""

    value: Any
    tx_id: str
    block_number: int


class Coalition:
    """Which orgs endorse this org's writes: the smallest set containing it that satisfies both the
    chaincode's lifecycle policy and the key-level stake policy in force (read from the ledger, cached,
    re-read when stake moves); or, for a payload every member peer stores, every org of the policy."""

    def __init__(self, msp_id: str) -> None:
        self.msp_id = msp_id
        self._orgs: Optional[list[str]] = None
        self._all: Optional[list[str]] = None

    def _load(self, client: "FedFabricClient") -> None:
        try:
            pol = client.get_policy()
        except (Rejected, GatewayError):
            return   # not initialized yet: let the Gateway choose
        rules = (pol, stakerule.lifecycle_rule(pol))
        self._orgs = stakerule.smallest_endorsing_set(self.msp_id, *rules)
        self._all = sorted(set().union(*(stakerule.rule_orgs(r) for r in rules)) | {self.msp_id})

    def orgs(self, client: "FedFabricClient") -> Optional[list[str]]:
        if self._orgs is None:
            self._load(client)
        return self._orgs

    def everyone(self, client: "FedFabricClient") -> Optional[list[str]]:
        """Every org in the policies in force (each holds stake), this one included."""
        if self._all is None:
            self._load(client)
        return self._all

    def forget(self) -> None:
        self._orgs = self._all = None


class FedFabricClient:
    """One org identity's view of the consortium contract."""

    def __init__(self, contract: Contract, msp_id: str = "", *, retries: int = 12, retry_delay: float = 0.5) -> None:
        self.contract = contract
        self.coalition = Coalition(msp_id) if msp_id else None
        self.retries = retries
        self.retry_delay = retry_delay

    # ---- plumbing
    @staticmethod
    def _args(args: tuple) -> list:
        return [a if isinstance(a, (str, bytes)) else json.dumps(a, sort_keys=True, separators=(",", ":"))
                for a in args]

    def _submit(self, fn: str, *args: Any, transient: Mapping[str, bytes] | None = None,
                everyone: bool = False) -> Written:
        """Submit with retries for transient conditions (endorsers not yet known, MVCC conflicts).
        ``everyone``: endorsed by every org of the policy, falling back to the smallest coalition if
        that fails (a private payload every member peer stores: no peer has to pull it at commit)."""
        raw = self._args(args)
        for attempt in range(self.retries + 1):
            orgs = None
            if self.coalition:
                orgs = self.coalition.everyone(self) if everyone else self.coalition.orgs(self)
            try:
                res: SubmitResult = self.contract.submit(fn, args=raw, transient=transient, endorsing_orgs=orgs)
                return Written(json.loads(res.result) if res.result else None, res.tx_id, res.block_number)
            except CommitError as err:
                if err.code == "ENDORSEMENT_POLICY_FAILURE" and self.coalition and attempt < self.retries:
                    self.coalition.forget()   # stake moved since we chose the endorsers
                    continue
                if err.code == "MVCC_READ_CONFLICT" and attempt < self.retries:
                    time.sleep(self.retry_delay)
                    continue
                raise
            except EndorseError as err:
                if _DISAGREE in str(err) and attempt < self.retries:
                    # endorsers at different heights read different state (one has not committed the
                    # last block yet): the same proposal agrees once it has
                    time.sleep(min(self.retry_delay * (attempt + 1), 3.0))
                    continue
                rej = _rejection(fn, err)
                if everyone and not (isinstance(rej, Rejected) and rej.status is not None):
                    everyone = False   # some org's peer could not endorse: the coalition will do, the rest pull
                    continue
                if isinstance(rej, Rejected):
                    raise rej from None
                if err.code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAVAILABLE) \
                        and attempt < self.retries:
                    # endorsers not known yet (gossip still connecting after start-up): back off
                    time.sleep(min(self.retry_delay * (attempt + 1), 3.0))
                    continue
                raise
        raise AssertionError("unreachable")

    def _evaluate_raw(self, fn: str, *args: Any) -> bytes:
        try:
            return self.contract.evaluate(fn, args=self._args(args))
        except EvaluateError as err:
            raise _rejection(fn, err) from None

    def _evaluate(self, fn: str, *args: Any) -> Any:
        out = self._evaluate_raw(fn, *args)
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

    def register(self, job_id: str, round_: int, public_key: bytes) -> Written:
        return self._submit("register", job_id, str(round_), public_key.hex())

    def start_round(self, job_id: str, round_: int) -> Written:
        return self._submit("start_round", job_id, str(round_))

    def submit_update(self, job_id: str, round_: int, meta: dict, payload: bytes | None) -> Written:
        """Post ``meta`` publicly; ``payload`` (jobs whose payloads are on the peers) goes through the
        transient map into the private collection, endorsed on every member org's peer at once (each
        stores it at endorsement instead of pulling it from another peer when it commits)."""
        return self._submit("submit_update", job_id, str(round_), meta,
                            transient={Transient.UPDATE.value: payload} if payload is not None else None,
                            everyone=payload is not None)

    def reveal_seeds(self, job_id: str, round_: int, seeds: Mapping[str, bytes]) -> Written:
        body = json.dumps({m: s.hex() for m, s in sorted(seeds.items())}).encode()
        return self._submit("reveal_seeds", job_id, str(round_), sorted(seeds), transient={Transient.SEEDS.value: body})

    def vote(self, job_id: str, round_: int, ballot: Ballot) -> Written:
        return self._submit("vote", job_id, str(round_), ballot.to_dict())

    def finalize_round(self, job_id: str, round_: int, optimizer_state: bytes | None = None) -> Written:
        """Close the round. Jobs with a server optimizer whose payloads are on the peers pass the base
        version's optimizer state (``optimizer_state``, checked against its hash by the endorsers)."""
        return self._submit("finalize_round", job_id, str(round_),
                            transient={Transient.OPTIMIZER_STATE.value: optimizer_state} if optimizer_state else None)

    def get_round(self, job_id: str, round_: int) -> RoundRecord:
        return RoundRecord.from_dict(self._evaluate("get_round", job_id, str(round_)))

    def list_rounds(self, job_id: str) -> list[dict]:
        return self._evaluate("list_rounds", job_id)

    def get_update(self, job_id: str, round_: int, msp_id: str) -> bytes:
        """The bytes of an org's update (masked in secure mode), hash-checked by the peer."""
        return self._evaluate_raw("get_update", job_id, str(round_), msp_id)

    def get_revealed_seeds(self, job_id: str, round_: int, msp_id: str) -> dict[str, bytes]:
        return {d: bytes.fromhex(s) for d, s in self._evaluate("get_revealed_seeds", job_id, str(round_),
                                                               msp_id).items()}

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
                peer_org: str | None = None, chaincode: str = CHAINCODE,
                **gateway_options: Any) -> tuple[Any, FedFabricClient]:
    """(gateway, client) for ``org`` as ``user`` on the consortium's channel; close the gateway when done.
    ``peer_org``: through that org's peer instead of ``org``'s own (see :func:`fedfabric.connect.connect`)."""
    from .connect import connect, site_layout

    layout = site_layout(config, run_root)
    gw = connect(org, user, config=layout.config, run_root=layout.root, peer_org=peer_org, **gateway_options)
    msp = layout.config.org(org).msp_id
    return gw, FedFabricClient(gw.get_network(layout.config.channel).get_contract(chaincode), msp)
