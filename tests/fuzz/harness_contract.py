"""Fuzz target: every transaction of the consortium contract, through the shim's router, on a MemoryStub.

The world is built once: a consortium of four orgs (Org4 a member of no job), pending stake and
status proposals, and jobs standing in every phase of a round -- registering (``jreg``), its
registration window over (``jexp``), collecting with one update in (``jcol``), voting (``jvote``),
revealing seeds for a dropped participant (``jlate``), a finalized round with the next one
collecting (``jdone``), and a clear-mode job (``jclear``). Round keys come from fixed seeds, so the
world is the same in every process.

An input picks one well-formed call (transaction, caller, arguments, transient map) and mutates
it: the caller (another org, an auditor, a trainer on an admin operation, a non-member, a peer),
each argument (a hostile JSON text, a mutated JSON value, a tweak, arbitrary text), the argument
count, the transient map, the function name and the proposal's timestamp (within and beyond the
endorser's clock skew).

Findings: an ``internal error`` answer (an exception other than the contract's errors); a refusal
with an unknown status, an overlong message or one repeating more than 200 characters of any
argument; a refused call that changed the world; an accepted write after which a stored job or
round no longer reads back (the nodes and the contract itself parse them on every later call).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fabshim.memstub import MemoryStub
from fabshim.stub import Response
from fedfabric.fl import secagg
from fedfabric_cc import state as cc_state
from fedfabric_protocol.errors import ProtocolError
from fedfabric_protocol.records import RoundRecord
from fedfabric_protocol.spec import JobSpec
from tests.chaincode import identities as ids
from tests.chaincode.harness import ORGS, T0, Ledger, init, job_spec, meta_for
from tests.chaincode.rounds_helper import Consortium, deltas_for

from .hostile import HOSTILE_TEXTS, Decisions, Finding, dump, echoed, mutate, texts_in, tweak

ORG4 = "Org4MSP"
STATUSES = (400, 403, 404, 409, 503)
MAX_MESSAGE = 1200


class SeededKeys(Consortium):
    """Round keys derived from (job, org, round): the same world in every process."""

    def fresh_key(self, msp: str, r: int) -> str:
        priv = X25519PrivateKey.from_private_bytes(hashlib.sha256(f"{self.job_id}|{msp}|{r}".encode()).digest())
        self.priv[(msp, r)] = priv
        return priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


IDENTITIES = {
    **{f"admin{i}": ids.admin(m) for i, m in enumerate(ORGS + [ORG4], 1)},
    **{f"trainer{i}": ids.trainer(m) for i, m in enumerate(ORGS + [ORG4], 1)},
    "auditor1": ids.auditor(ORGS[0]), "auditor2": ids.auditor(ORGS[1]),
    "evil": ids.trainer("EvilMSP"), "evil-admin": ids.admin("EvilMSP"), "peer1": ids.peer(ORGS[0]),
    "king": ids.creator(ORGS[0], "King@Org1MSP", ("client",), (("fedfabric.role", "king"),)),
}
NAMES = sorted(IDENTITIES)


def _jobs(led: Ledger) -> dict[str, SeededKeys]:
    """The jobs of the world, each left in its phase (``led.t`` moves to build the late ones)."""
    admin = ids.admin(ORGS[0])
    out = {}

    def job(job_id: str, **over: Any) -> SeededKeys:
        led.call(admin, "create_job", job_spec(job_id, **over))
        out[job_id] = SeededKeys(led, job_id)
        return out[job_id]

    led.t = T0 - 1000
    c = job("jexp", windows={"registration_s": 10, "submission_s": 10, "approval_s": 10})
    c.register(1, ORGS[:1])
    c = job("jlate", windows={"registration_s": 60, "submission_s": 10, "reveal_s": 2000, "approval_s": 600})
    c.register(1, ORGS)
    c.start(1)
    c.submit(1, deltas_for(ORGS[:2], seed=3))
    led.t = T0
    job("jreg").register(1, ORGS[:1])
    for job_id in ("jcol", "jvote", "jdone"):
        c = job(job_id)
        c.register(1, ORGS)
        c.start(1)
    out["jcol"].submit(1, deltas_for(ORGS[:1], seed=1))
    c = out["jvote"]
    c.submit(1, deltas_for(ORGS, seed=2))
    c.vote(1, ORGS[:1], c.result(1))
    c = out["jdone"]
    c.full_round(1, deltas_for(ORGS, seed=4))
    led.call(admin, "set_alias", "jdone", "production", 1)
    c = job("jclear", privacy="clear", aggregation={"rule": "median"}, min_participants=3)
    c.register(1, ORGS)
    c.start(1)
    return out


def _world() -> tuple[Ledger, list[tuple[str, str, list[str], Optional[dict]]]]:
    """The ledger and the well-formed calls the inputs start from: (function, caller, arguments, transient)."""
    led = Ledger()
    init(led, orgs=ORGS + [ORG4], stakes=(100, 100, 100, 100), balances=(0, 0, 0, 0))
    led.call(ids.admin(ORGS[0]), "propose_stake_adjustment", "p-stake", ORGS[1], 5, "more data")
    led.call(ids.admin(ORGS[0]), "propose_status_change", "p-status", ORG4, "suspended", "idle")
    jobs = _jobs(led)
    col, late, clear = jobs["jcol"], jobs["jlate"], jobs["jclear"]
    pay2 = col.payload(1, ORGS[1], deltas_for(ORGS[1:2], seed=9)[ORGS[1]])
    pay_clear = clear.payload(1, ORGS[0], deltas_for(ORGS[:1], seed=5)[ORGS[0]])
    vote = jobs["jvote"]
    late_ctx = b"jlate|1"
    seed13 = secagg.pairwise_seed(late.priv[(ORGS[0], 1)], bytes.fromhex(late.round(1)["public_keys"][ORGS[2]]),
                                  late_ctx).hex()
    orgs = [{"msp_id": m, "name": m.lower(), "stake": 100} for m in ORGS]
    j = json.dumps
    calls: list[tuple[str, str, list[str], Optional[dict]]] = [
        ("init_consortium", "admin1", [j(orgs), "2/3"], None),
        ("transfer_stake", "admin1", [ORGS[1], "10"], None),
        ("propose_stake_adjustment", "admin2", ["p-new", ORGS[2], "-5", "burn"], None),
        ("approve_stake_adjustment", "admin2", ["p-stake"], None),
        ("propose_status_change", "admin2", ["s-new", ORGS[2], "suspended", "why"], None),
        ("approve_status_change", "admin3", ["p-status"], None),
        ("get_org", "trainer1", [ORGS[0]], None),
        ("list_orgs", "trainer2", [], None),
        ("org_history", "auditor1", [ORGS[1]], None),
        ("get_policy", "trainer3", [], None),
        ("create_job", "admin2", [j(job_spec("jnew"))], None),
        ("create_job", "admin1", [j(job_spec("jnew2", privacy="clear", aggregation={"rule": "trimmed_mean",
                                                                                   "trim": 1},
                                             min_participants=3))], None),
        ("get_job", "trainer1", ["jdone"], None),
        ("list_jobs", "trainer1", ["2", ""], None),
        ("register", "trainer2", ["jreg", "1", "cd" * 32], None),
        ("register", "trainer3", ["jdone", "3", "ef" * 32], None),
        ("start_round", "trainer1", ["jexp", "1"], None),
        ("start_round", "trainer2", ["jreg", "1"], None),
        ("submit_update", "trainer2", ["jcol", "1", j(meta_for(pay2, 300))], {"update": pay2}),
        ("submit_update", "trainer1", ["jclear", "1", j(meta_for(pay_clear))], {"update": pay_clear}),
        ("reveal_seeds", "trainer1", ["jlate", "1", j([ORGS[2]])], {"seeds": j({ORGS[2]: seed13}).encode()}),
        ("vote", "trainer2", ["jvote", "1", j(vote.ballot(1, ORGS[1], vote.result(1)))], None),
        ("vote", "trainer3", ["jvote", "1", j({"approve": False, "metrics": {}, "next_public_key": "12" * 32})], None),
        ("finalize_round", "trainer1", ["jvote", "1"], None),
        ("finalize_round", "trainer2", ["jlate", "1"], None),
        ("get_round", "trainer1", ["jdone", "2"], None),
        ("list_rounds", "auditor1", ["jdone"], None),
        ("get_update", "trainer2", ["jcol", "1", ORGS[0]], None),
        ("get_revealed_seeds", "trainer2", ["jlate", "1", ORGS[0]], None),
        ("get_version", "auditor1", ["jdone", "production"], None),
        ("list_versions", "trainer1", ["jdone"], None),
        ("set_alias", "admin2", ["jdone", "staging", "1"], None),
        ("list_aliases", "trainer1", ["jdone"], None),
        ("set_tag", "admin3", ["jdone", "1", "stage", "production"], None),
        ("lineage", "trainer1", ["jdone", "latest"], None),
        ("compare_versions", "trainer1", ["jdone", "0", "1"], None),
        ("round_report", "auditor1", ["jdone", "1"], None),
        ("org_report", "trainer1", [ORGS[0]], None),
        ("key_history", "auditor1", ["job", j(["jdone"])], None),
    ]
    return led, calls


LEDGER, CALLS = _world()
STUB: MemoryStub = LEDGER.stub
TX_NAMES = sorted(t["name"] for t in LEDGER.cc.metadata()["contracts"]["fedfabric"]["transactions"])
WRITES = {t["name"] for t in LEDGER.cc.metadata()["contracts"]["fedfabric"]["transactions"] if not t["evaluate"]}
PRISTINE = (dict(STUB.state), {c: dict(v) for c, v in STUB.private.items()}, dict(STUB.vparams),
            {k: list(v) for k, v in STUB.history.items()}, len(STUB.events), STUB.block, STUB._seq)
TIMES = (T0 + 31, T0 - 31, 0, T0 + 29, T0 - 29)


def _restore() -> None:
    state, private, vparams, history, events, block, seq = PRISTINE
    STUB.state, STUB.private, STUB.vparams = dict(state), {c: dict(v) for c, v in private.items()}, dict(vparams)
    STUB.history = {k: list(v) for k, v in history.items()}
    del STUB.events[events:]
    del STUB.rw_log[:]
    STUB.block, STUB._seq = block, seq


def _mutate_arg(arg: str, d: Decisions) -> str:
    op = d.below(12)
    if op <= 5:
        return arg
    if op == 6:
        return HOSTILE_TEXTS[d.below(len(HOSTILE_TEXTS))]
    if op in (7, 8):
        try:
            value = json.loads(arg)
        except ValueError:
            return tweak(arg, d)
        return dump(mutate(value, d, raw=True, steps=1 + d.below(4)))
    if op == 9:
        return tweak(arg, d)
    if op == 10:
        return d.text(300)
    return arg * (1 + d.below(40))


def _mutate_transient(tr: Optional[dict], d: Decisions) -> Optional[dict]:
    op = d.below(10)
    if tr is None:
        return {"update": d.chunk(64)} if op == 0 else None
    (name, value), = tr.items()
    if op == 0:
        return None
    if op == 1:
        return {name: d.chunk(64)}
    if op == 2:
        return {name: value[:d.below(len(value) + 1)]}
    if op == 3:
        return {name: value, "extra": b"x"}
    if op == 4:
        try:
            return {name: dump(mutate(json.loads(value), d, raw=True, steps=1)).encode()}
        except ValueError:
            return {name: value[::-1]}
    return tr


def _check_world(fn: str) -> None:
    """After an accepted write every stored job and round still reads back as the contract wrote it."""
    for k, raw in STUB.state.items():
        object_type = k[1:k.index("\x00", 1)] if k.startswith("\x00") else ""
        if object_type == cc_state.JOB:
            spec = json.loads(raw)["spec"]
            try:
                again = JobSpec.from_dict(spec).to_dict()
            except ProtocolError as exc:
                raise Finding(f"{fn} stored a job whose spec is refused on reading: {exc}"[:400]) from None
            if again != spec:
                raise Finding(f"{fn} stored a job spec that is not canonical: {spec!r:.300}")
        elif object_type == cc_state.ROUND:
            rec = json.loads(raw)
            if RoundRecord.from_dict(rec).to_dict() != rec:
                raise Finding(f"{fn} stored a round record that does not read back: {rec!r:.300}")


def one_input(data: bytes) -> None:
    """The fuzz target."""
    d = Decisions(data)
    fn, caller, args, transient = CALLS[d.below(len(CALLS))]
    if d.below(2):
        caller = NAMES[d.below(len(NAMES))]
    args = [_mutate_arg(a, d) for a in args]
    count = d.below(24)
    if count == 0 and args:
        args = args[:-1]
    elif count == 1:
        args.append(d.text(20))
    name = d.below(24)
    if name == 0:
        fn = TX_NAMES[d.below(len(TX_NAMES))]
    elif name == 1:
        fn = d.text(40) or fn
    transient = _mutate_transient(transient, d)
    at = TIMES[d.below(len(TIMES))] if d.below(6) == 0 else T0
    raw_args = [fn.encode("utf-8", "surrogatepass"), *(a.encode("utf-8", "surrogatepass") for a in args)]
    if fn == "init_consortium" and d.below(2):   # on a ledger nobody initialized yet
        empty = MemoryStub()
        resp = empty.run(LEDGER.cc, IDENTITIES[caller], raw_args, at, transient)
        check_response(resp, fn, args, fresh=empty)
        return
    resp = STUB.run(LEDGER.cc, IDENTITIES[caller], raw_args, at, transient)
    try:
        check_response(resp, fn, args)
    finally:
        if STUB.block != PRISTINE[5]:
            _restore()


def check_response(resp: Any, fn: str, args: list[str], fresh: Optional[MemoryStub] = None) -> None:
    """The harness's properties of the answer ``resp`` to ``fn(*args)`` (``fresh``: it ran on that empty ledger)."""
    if not isinstance(resp, Response) or not isinstance(resp.status, int) or not isinstance(resp.message, str):
        raise Finding(f"{fn}: invoke returned {resp!r:.200}")
    if resp.status == 200:
        if fn in WRITES:
            _check_world(fn)
        if resp.payload and fn != "get_update":
            json.loads(resp.payload)
        return
    if resp.message.startswith("internal error"):
        raise Finding(f"{fn}: {resp.message[:400]}")
    router = resp.message.startswith((f"{fn}: ", "function ", "no function name", "the function name"))
    if resp.status not in STATUSES and not (resp.status == 500 and router):
        raise Finding(f"{fn}: status {resp.status} for {resp.message[:200]!r}")
    if len(resp.message) > MAX_MESSAGE:
        raise Finding(f"{fn}: a refusal of {len(resp.message)} characters: {resp.message[:200]!r}")
    inputs = list(args)
    for a in args:
        try:
            inputs.extend(texts_in(json.loads(a)))
        except (ValueError, RecursionError):
            pass
    hit = echoed(resp.message, inputs)
    if hit:
        raise Finding(f"{fn}: the refusal repeats more than 200 characters of an argument: {resp.message[:300]!r}")
    if fresh is not None:
        changed = bool(fresh.block or fresh.state or fresh.events)
    else:
        changed = ((STUB.block, len(STUB.events)) != (PRISTINE[5], PRISTINE[4]) or STUB.state != PRISTINE[0]
                   or STUB.private != PRISTINE[1])
    if changed:
        raise Finding(f"{fn}: a refused call changed the world")


def seeds() -> list[bytes]:
    """Each well-formed call as is (by its own caller), and each with its first argument made hostile."""
    n = len(CALLS)
    return [bytes([i, 0]) for i in range(n)] + [bytes([i, 0, 6, k]) for i in range(n) for k in (8, 24, 66, 77)]

