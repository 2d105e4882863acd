"""Live: runtime behaviour of the ledger through the Gateway on the session's real network.

Deploys the demo contract (``tests/chaincode_demo/demo_cc.py``, served by ``fabshim``) as chaincode
``rtdemo`` on its own chaincode-server ports, with a one-of-any-org endorsement policy (so that a
key-level policy is the only thing that can make an org1-only endorsement fail) and a private data
collection of org1 and org2. Checks: submit/evaluate round trip, chaincode errors, chaincode
events and resume, private data through the transient map, state-based endorsement enforced at
commit, recovery from a killed chaincode server and from a killed Raft orderer, the auditor
identity.

The network is shared with the other live test files: every process killed here is restored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from fedfabric.ledger import CommitError, CommitStatusError, EndorseError, EvaluateError, Gateway, GatewayError
from fedfabric.network import deploy as ccdeploy
from fedfabric.network import nodes
from tests.chaincode.policy_reference import signature_policy_envelope

from .live_helpers import channel_of, connect_org, wait_for_height, wait_until_endorsable

pytestmark = pytest.mark.live

CC = "rtdemo"
CC_PORT_OFFSET = 20          # servers at each org's chaincode_server_port + 20 (echo uses + 10)
COLLECTION = "rtSecrets"     # private data collection of Org1MSP and Org2MSP


def _uid() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def rtdemo(live_network) -> str:
    cfg = live_network.config
    any_org = "OR(" + ",".join(f"'{o.msp_id}.peer'" for o in cfg.orgs) + ")"
    members = [o.msp_id for o in cfg.orgs[:2]]
    collection = {"name": COLLECTION, "policy": "OR(" + ",".join(f"'{m}.member'" for m in members) + ")",
                  "requiredPeerCount": 0, "maxPeerCount": 1, "blockToLive": 0,
                  "memberOnlyRead": True, "memberOnlyWrite": True}
    live_network.deploy(ccdeploy.ChaincodeDeployment(
        name=CC, version="1", port_offset=CC_PORT_OFFSET, policy=any_org, collections=(collection,),
        command=(sys.executable, "-m", "tests.chaincode_demo.demo_cc")))
    with connect_org(live_network, "org1") as gw:
        contract = gw.get_network(channel_of(live_network)).get_contract(CC)
        wait_until_endorsable(contract, "put", ["warmup", "1"])
        # the tests make org1's Gateway target each org's peer: wait until gossip has told it about
        # every peer running the chaincode ("failed to find any endorsing peers for org(s): ...")
        for org in cfg.orgs:
            deadline = time.monotonic() + 60
            while True:
                try:
                    contract.submit("put", args=[f"warmup-{org.name}", "1"], endorsing_orgs=[org.msp_id])
                    break
                except EndorseError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
    return CC


@pytest.fixture(scope="module")
def gws(live_network, rtdemo) -> Iterator[dict[str, Gateway]]:
    out = {o.name: connect_org(live_network, o.name) for o in live_network.config.orgs}
    try:
        yield out
    finally:
        for gw in out.values():
            gw.close()


def _contract(live_network, gw: Gateway):
    return gw.get_network(channel_of(live_network)).get_contract(CC)


def _qscc(live_network, gw: Gateway):
    return gw.get_network(channel_of(live_network)).qscc()


# -- 1. round trip ---------------------------------------------------------------------------------
def test_submit_evaluate_round_trip(live_network, gws) -> None:
    c = _contract(live_network, gws["org1"])
    key = f"ctr-{_uid()}"
    first = c.submit("add", args=[key, "5"])
    assert first.result == b"5" and first.status == "VALID"
    assert re.fullmatch(r"[0-9a-f]{64}", first.tx_id) and first.block_number > 0
    second = c.submit("add", args=[key, "7"])
    assert second.result == b"12" and second.status == "VALID" and second.tx_id != first.tx_id
    assert second.block_number > first.block_number   # read-modify-write after the first one committed
    assert c.evaluate("get", args=[key]) == b"12"
    # the same facts, as the ledger of another org's peer records them
    q2 = _qscc(live_network, gws["org2"])
    wait_for_height(q2, second.block_number + 1)
    assert _contract(live_network, gws["org2"]).evaluate("get", args=[key]) == b"12"
    tx = q2.transaction(second.tx_id)
    assert tx["validation_code"] == "VALID" and tx["block_number"] == second.block_number
    assert tx["chaincode"] == CC and tx["function"] == "add" and tx["creator_msp"] == "Org1MSP"
    assert tx["writes"] == [{"namespace": CC, "key": key, "is_delete": False}]


# -- 2. chaincode errors -----------------------------------------------------------------------------
def test_chaincode_error_reaches_client(live_network, gws) -> None:
    c = _contract(live_network, gws["org1"])
    org1 = live_network.config.org("org1")
    message = f"model round {_uid()} is closed"
    with pytest.raises(EndorseError) as ei:
        c.submit("fail", args=[message])
    err = ei.value
    assert message in str(err) and "Org1MSP" in str(err) and f"{org1.peer.port}" in str(err)
    assert any(d.msp_id == "Org1MSP" and d.address == f"127.0.0.1:{org1.peer.port}" and message in d.message
               for d in err.details), err.details
    with pytest.raises(EvaluateError, match=message):
        c.evaluate("fail", args=[message])
    missing = f"nokey-{_uid()}"
    with pytest.raises(EvaluateError, match=f"key {missing} not found"):
        c.evaluate("get", args=[missing])
    with pytest.raises(EndorseError, match="cannot parse argument 'delta' as int") as bad_arg:
        c.submit("add", args=["k", "five"])
    # a failed endorsement is never sent for ordering
    q = _qscc(live_network, gws["org1"])
    for tx_id in (err.tx_id, bad_arg.value.tx_id):
        assert tx_id and re.fullmatch(r"[0-9a-f]{64}", tx_id)
        with pytest.raises(EvaluateError):
            q.transaction(tx_id)


# -- 3. chaincode events ------------------------------------------------------------------------------
def test_chaincode_events_in_commit_order_and_resume(live_network, gws) -> None:
    ch = channel_of(live_network)
    c = _contract(live_network, gws["org1"])
    q = _qscc(live_network, gws["org2"])
    start = q.chain_info()["height"]
    n = 6
    live: list = []
    stream = gws["org2"].get_network(ch).chaincode_events(CC, start_block=start, timeout=60)

    def consume() -> None:
        for ev in stream:
            live.append(ev)
            if len(live) >= n:
                break

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    tag = _uid()
    keys = [f"ev-{tag}-{i}" for i in range(n)]
    pending = [c.submit_async("put_emit", args=[k, str(i)]) for i, k in enumerate(keys)]
    statuses = {p.tx_id: p.get_status(timeout=30) for p in pending}
    assert all(s.successful for s in statuses.values()), statuses
    consumer.join(30)
    stream.close()
    assert not consumer.is_alive() and len(live) == n, live

    # the order of commit: block number, then position inside the block
    last_block = max(s.block_number for s in statuses.values())
    wait_for_height(q, last_block + 1)
    order = []
    for b in sorted({s.block_number for s in statuses.values()}):
        order += [t["tx_id"] for t in q.block(b)["transactions"] if t["tx_id"] in statuses]
    assert [e.tx_id for e in live] == order
    assert [e.block_number for e in live] == [statuses[e.tx_id].block_number for e in live]
    assert all(e.event_name == "Put" and e.chaincode_name == CC for e in live)
    by_tx = {p.tx_id: k for p, k in zip(pending, keys)}
    assert [e.payload for e in live] == [by_tx[e.tx_id].encode() for e in live]

    # resume after the third event: exactly the rest, no repeats
    def take(k: int, **kw) -> list:
        got = []
        with gws["org2"].get_network(ch).chaincode_events(CC, timeout=15, **kw) as again:
            for ev in again:
                got.append(ev)
                if len(got) >= k:
                    break
        return got

    resumed = take(n - 3, start_block=live[2].block_number, after_tx_id=live[2].tx_id)
    assert [e.tx_id for e in resumed] == [e.tx_id for e in live[3:]]
    # replay from the last event's block: starts with the first event committed in that block
    from_block = take(1, start_block=live[-1].block_number)
    assert from_block[0].tx_id == next(e.tx_id for e in live if e.block_number == live[-1].block_number)


# -- 4. private data ----------------------------------------------------------------------------------
def test_private_data_via_transient_stays_off_the_block(live_network, gws) -> None:
    c1 = _contract(live_network, gws["org1"])
    key = f"pd-{_uid()}"
    secret = f"patient-cohort-{uuid.uuid4().hex}".encode()
    res = c1.submit("put_private", args=[COLLECTION, key], transient={"value": secret})
    assert res.status == "VALID"
    assert c1.evaluate("get_private", args=[COLLECTION, key]) == secret
    # a member org's peer has it too; a non-member org cannot read it
    for org in ("org2", "org3"):
        wait_for_height(_qscc(live_network, gws[org]), res.block_number + 1)
    c2 = _contract(live_network, gws["org2"])
    deadline = time.monotonic() + 15
    while True:   # org2 gets it by dissemination or, failing that, pulls it at commit
        try:
            assert c2.evaluate("get_private", args=[COLLECTION, key]) == secret
            break
        except EvaluateError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    with pytest.raises(EvaluateError):
        _contract(live_network, gws["org3"]).evaluate("get_private", args=[COLLECTION, key])

    # the block as every peer stores it: only the hash of the key, never the value
    q = _qscc(live_network, gws["org3"])
    raw = q.raw_block(res.block_number).SerializeToString()
    assert secret not in raw
    assert hashlib.sha256(secret).digest() in raw   # the hashed write (value hash) is what is public
    tx = q.transaction(res.tx_id)
    assert tx["validation_code"] == "VALID" and tx["writes"] == []
    assert tx["private_writes"] == [{"namespace": CC, "collection": COLLECTION,
                                     "key_hash": hashlib.sha256(key.encode()).hexdigest(), "is_delete": False}]
    # a missing transient field is a chaincode error, not an empty write
    with pytest.raises(EndorseError, match="transient field 'value' is required"):
        c1.submit("put_private", args=[COLLECTION, f"{key}-x"])


# -- 5. state-based endorsement -----------------------------------------------------------------------
def test_key_level_endorsement_policy_enforced(live_network, gws) -> None:
    c = _contract(live_network, gws["org1"])
    q = _qscc(live_network, gws["org1"])
    key, free_key = f"sbe-{_uid()}", f"free-{_uid()}"
    c.submit("put", args=[key, "v1"])
    envelope = signature_policy_envelope([("Org2MSP", "Org3MSP")])
    c.submit("set_key_policy", args=[key, envelope.hex()])
    assert c.evaluate("get_key_policy", args=[key]) == envelope.hex().encode()

    # control: a key without a key-level policy is fine with org1's endorsement alone
    assert c.submit("put", args=[free_key, "x"], endorsing_orgs=["Org1MSP"]).status == "VALID"
    with pytest.raises(CommitError) as ei:
        c.submit("put", args=[key, "v2"], endorsing_orgs=["Org1MSP"])
    assert ei.value.code == "ENDORSEMENT_POLICY_FAILURE" and ei.value.block_number is not None
    bad = q.transaction(ei.value.tx_id)
    assert bad["validation_code"] == "ENDORSEMENT_POLICY_FAILURE" and bad["endorsers"] == ["Org1MSP"]
    assert c.evaluate("get", args=[key]) == b"v1"
    # one of the two required orgs is still not enough
    with pytest.raises(CommitError, match="ENDORSEMENT_POLICY_FAILURE"):
        c.submit("put", args=[key, "v2"], endorsing_orgs=["Org2MSP"])
    assert c.evaluate("get", args=[key]) == b"v1"

    ok = c.submit("put", args=[key, "v3"], endorsing_orgs=["Org2MSP", "Org3MSP"])
    assert ok.status == "VALID" and sorted(q.transaction(ok.tx_id)["endorsers"]) == ["Org2MSP", "Org3MSP"]
    assert c.evaluate("get", args=[key]) == b"v3"
    # without a target, the Gateway plans endorsers from the chaincode interest (incl. the key policy)
    planned = c.submit("put", args=[key, "v4"])
    assert planned.status == "VALID" and {"Org2MSP", "Org3MSP"} <= set(q.transaction(planned.tx_id)["endorsers"])
    assert c.evaluate("get", args=[key]) == b"v4"


# -- 8. auditor ----------------------------------------------------------------------------------------
def test_auditor_identity_can_evaluate(live_network, gws) -> None:
    key = f"aud-{_uid()}"
    res = _contract(live_network, gws["org1"]).submit("put", args=[key, "seen"])
    with connect_org(live_network, "org1", user="Auditor") as gw:
        c = _contract(live_network, gw)
        who = json.loads(c.evaluate("whoami"))
        assert who["msp_id"] == "Org1MSP" and who["role"] == "auditor" and "CN=Auditor@" in who["id"]
        assert c.evaluate("get", args=[key]) == b"seen"
        assert _qscc(live_network, gw).transaction(res.tx_id)["validation_code"] == "VALID"
    user = json.loads(_contract(live_network, gws["org1"]).evaluate("whoami"))
    assert user["role"] is None and "CN=User1@" in user["id"]


# -- process helpers ------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _pid_of(net, node_id: str) -> int:
    pid = net.running_pid(nodes.load_state(net.layout), node_id)
    assert pid is not None, f"{node_id} is not running"
    return pid


def _wait(predicate, timeout: float, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(poll)


# -- 7. chaincode server killed ----------------------------------------------------------------------------
def test_killed_chaincode_server_is_restarted(live_network, gws) -> None:
    org1 = live_network.config.org("org1")
    node_id = ccdeploy.server_node_id(CC, org1)
    supervisor = _pid_of(live_network, node_id)
    (child,) = _children(supervisor)
    c = _contract(live_network, gws["org1"])
    key = f"cc-{_uid()}"
    os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()
    try:
        assert _wait(lambda: not _alive(child), 5)
        failures = 0
        while True:   # only org1's peer endorses: it must reach the restarted server
            try:
                res = c.submit("put", args=[key, "back"], endorsing_orgs=["Org1MSP"], timeout=5)
                break
            except GatewayError:
                failures += 1
                if time.monotonic() - killed_at > 30:
                    raise
                time.sleep(0.3)
        recovered = time.monotonic() - killed_at
        assert res.status == "VALID" and recovered < 30
        assert c.evaluate("get", args=[key], endorsing_orgs=["Org1MSP"]) == b"back"
        assert _pid_of(live_network, node_id) == supervisor
        new_children = _children(supervisor)
        assert len(new_children) == 1 and new_children[0] != child
        print(f"chaincode server recovered {recovered:.1f}s after SIGKILL ({failures} failed attempts)")
    finally:   # leave a served chaincode behind whatever happened
        _wait(lambda: _children(supervisor), 15)


# -- 6. a Raft orderer killed during a stream of submits ------------------------------------------------------
# The orderers run with ORDERER_METRICS_PROVIDER=disabled (fedfabric.network.nodes), so the operations
# endpoint has no consensus_etcdraft_is_leader gauge: the leader is read from the etcdraft logs of the
# orderers' current runs, and the test fails loudly if they do not agree on one.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LEADER_CHANGED = re.compile(r"Raft leader changed: (\d+) -> (\d+)")
_NODE_FIELD = re.compile(r"\bnode=(\d+)\b")
SUBMITTERS, MIN_ATTEMPTS, KILL_AFTER_COMMITS = 6, 5, 8
SUBMIT_TIMEOUT, COMMIT_TIMEOUT = 8.0, 15.0
SUBMIT_BOUND = 2 * SUBMIT_TIMEOUT + COMMIT_TIMEOUT + 5.0   # endorse + submit + commit wait + slack


def _log_bytes(net, name: str) -> bytes:
    try:
        return net.layout.log_file(name).read_bytes()
    except OSError:
        return b""


def _etcdraft_lines(text: str, channel: str) -> list[str]:
    """The etcdraft chain's log lines for ``channel`` (they carry the orderer's own raft id as node=)."""
    return [ln for ln in _ANSI.sub("", text).splitlines()
            if "orderer.consensus.etcdraft" in ln and f"channel={channel}" in ln]


def _raft_view(net, name: str, channel: str) -> tuple[int | None, int | None]:
    """(own raft id, leader id last reported) from the log of the orderer's current run."""
    text = _log_bytes(net, name).decode(errors="replace")
    text = text[max(0, text.rfind(f"==== fedfabric: starting {name} at")):]
    own = leader = None
    for ln in _etcdraft_lines(text, channel):
        fields = _NODE_FIELD.findall(ln)
        if fields:   # the logger's own fields come last: "... channel=<ch> node=<own raft id>"
            own = int(fields[-1])
        if (m := _LEADER_CHANGED.search(ln)):
            leader = int(m.group(2))
    return own, leader


def raft_leader(net, channel: str, timeout: float = 30.0) -> tuple[str, int]:
    """(orderer name, raft id) of the channel's Raft leader, as all running orderers' logs report it.

    Fails the test (never guesses) if the running orderers do not agree on one leader in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        ids: dict[int, str] = {}
        views: dict[str, int | None] = {}
        for o in net.config.orderer_org.orderers:
            if net.running_pid(nodes.load_state(net.layout), o.name) is None:
                continue
            own, leader = _raft_view(net, o.name, channel)
            if own is not None:
                ids[own] = o.name
            views[o.name] = leader
        seen = set(views.values())
        if len(seen) == 1 and (lead := seen.pop()) and lead in ids and len(views) == len(ids):
            return ids[lead], lead
        if time.monotonic() > deadline:
            pytest.fail(f"cannot identify the Raft leader of channel {channel} from the orderer logs "
                        f"(metrics are disabled, so no consensus_etcdraft_is_leader): raft ids {ids}, "
                        f"leader last reported by each running orderer {views}")
        time.sleep(0.5)


def _leader_left(net, survivors: list[str], offsets: dict[str, int], victim_id: int, channel: str) -> bool:
    """True once a survivor's log, after ``offsets``, reports the leader changing away from ``victim_id``."""
    for name in survivors:
        text = _log_bytes(net, name)[offsets[name]:].decode(errors="replace")
        for ln in _etcdraft_lines(text, channel):
            m = _LEADER_CHANGED.search(ln)
            if m and int(m.group(1)) == victim_id:
                return True
    return False


class _Outcome:
    """One submit: when it ran, and its result or error."""

    def __init__(self, key: str, value: str, started: float) -> None:
        self.key, self.value, self.started = key, value, started
        self.ended = started
        self.tx_id: str | None = None
        self.block: int | None = None
        self.error: GatewayError | None = None


class _Submitters:
    """SUBMITTERS threads, each submitting distinct keys until it has made MIN_ATTEMPTS submits and
    had one success that started after the kill (or the stop deadline passes)."""

    def __init__(self, contract, tag: str) -> None:
        self.contract, self.tag = contract, tag
        self.outcomes: list[_Outcome] = []
        self.lock = threading.Lock()
        self.killed_at: float | None = None
        self.stop_at = time.monotonic() + 240
        self.unexpected: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(SUBMITTERS)]

    def committed(self) -> int:
        with self.lock:
            return sum(1 for o in self.outcomes if o.error is None)

    def _one(self, t: int, i: int) -> _Outcome:
        o = _Outcome(f"ord-{self.tag}-{t}-{i}", f"v{t}.{i}", time.monotonic())
        try:
            res = self.contract.submit("put", args=[o.key, o.value], timeout=SUBMIT_TIMEOUT,
                                       commit_timeout=COMMIT_TIMEOUT)
            o.tx_id, o.block = res.tx_id, res.block_number
        except GatewayError as err:   # CommitError included: it is a GatewayError
            o.error, o.tx_id = err, err.tx_id
        o.ended = time.monotonic()
        return o

    def _done(self, mine: list[_Outcome]) -> bool:
        after_kill = self.killed_at is not None and any(
            o.error is None and o.started > self.killed_at for o in mine)
        return (len(mine) >= MIN_ATTEMPTS and after_kill) or time.monotonic() > self.stop_at

    def _run(self, t: int) -> None:
        mine: list[_Outcome] = []
        try:
            while not self._done(mine):
                o = self._one(t, len(mine))
                mine.append(o)
                with self.lock:
                    self.outcomes.append(o)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.unexpected.append(exc)

    def start(self) -> None:
        for th in self.threads:
            th.start()

    def join(self, timeout: float) -> list[threading.Thread]:
        deadline = time.monotonic() + timeout
        for th in self.threads:
            th.join(max(0.0, deadline - time.monotonic()))
        return [th for th in self.threads if th.is_alive()]


def _fate(q, tx_id: str) -> tuple[str, int | None]:
    """(validation code, block number) of ``tx_id`` on the peer behind ``q``."""
    try:
        tx = q.transaction(tx_id)
    except GatewayError:
        return "not on the ledger", None
    return tx["validation_code"], tx["block_number"]


def test_orderer_killed_during_submits_loses_nothing(live_network, gws) -> None:
    net = live_network
    ch = channel_of(net)
    c = _contract(net, gws["org1"])
    subs = _Submitters(c, _uid())
    victim = victim_id = pid = None
    t0 = time.monotonic()
    try:
        subs.start()
        assert _wait(lambda: subs.committed() >= KILL_AFTER_COMMITS, 120), "no submits committed before the kill"
        victim, victim_id = raft_leader(net, ch)
        pid = _pid_of(net, victim)
        survivors = [o.name for o in net.config.orderer_org.orderers if o.name != victim]
        offsets = {n: len(_log_bytes(net, n)) for n in survivors}
        os.kill(pid, signal.SIGKILL)
        subs.killed_at = time.monotonic()
        assert _wait(lambda: not _alive(pid), 5)
        # the killed orderer was the leader: the survivors saw leadership leave its raft id
        assert _wait(lambda: _leader_left(net, survivors, offsets, victim_id, ch), 60), \
            f"no survivor reported Raft leader {victim_id} ({victim}) going away after the kill"
        stuck = subs.join(subs.stop_at - time.monotonic() + SUBMIT_BOUND)
        assert not stuck, f"{len(stuck)} submitter thread(s) still running: a submit hangs"
        assert not subs.unexpected, subs.unexpected
        _check_outcomes(net, gws, subs, victim)
        print(f"killed Raft leader {victim} (raft id {victim_id}) after {KILL_AFTER_COMMITS} commits; "
              f"{len(subs.outcomes)} submits from {SUBMITTERS} threads in {time.monotonic() - t0:.1f}s")
    finally:
        subs.stop_at = 0.0   # let the submitters wind down whatever happened
        if pid is not None:
            net.up()   # restarts exactly the missing orderer (idempotent for the rest)
    _check_restarted(net, c, victim, pid)


def _check_outcomes(net, gws, subs: _Submitters, victim: str) -> None:
    """Every submit ended in time with success or a clear error; every VALID one is on every peer."""
    killed_at = subs.killed_at
    valid = {o.tx_id: o for o in subs.outcomes if o.error is None}
    failed = [o for o in subs.outcomes if o.error is not None]
    for o in subs.outcomes:
        assert o.ended - o.started <= SUBMIT_BOUND, (o.key, o.ended - o.started)
    for o in failed:
        err = o.error
        assert o.ended >= killed_at, f"submit failed before the kill: {err}"
        assert err.code is not None and str(err).startswith(f"{err.operation} failed: ") and len(str(err)) > 20, err
        assert not isinstance(err, CommitError), f"a transaction was committed invalid: {err}"
    for t in range(SUBMITTERS):   # the cluster kept ordering after the kill
        assert any(o.started > killed_at for o in valid.values() if o.key.split("-")[-2] == str(t)), t
    # a submit that timed out waiting for its commit may still have been ordered: if VALID, it counts
    q1 = _qscc(net, gws["org1"])
    late: dict[str, _Outcome] = {}
    for o in failed:
        if isinstance(o.error, CommitStatusError) and o.tx_id:
            code, o.block = _fate(q1, o.tx_id)
            assert code in ("VALID", "not on the ledger"), (o.tx_id[:8], code)
            if code == "VALID":
                late[o.tx_id] = o
    expected = {**valid, **late}
    top = max(o.block for o in expected.values() if o.block is not None)
    for org, gw in gws.items():
        q = _qscc(net, gw)
        wait_for_height(q, top + 1)
        cg = _contract(net, gw)
        for tx_id, o in expected.items():
            tx = q.transaction(tx_id)   # qscc GetTransactionByID on this org's peer
            assert tx["validation_code"] == "VALID", (org, tx_id[:8], tx["validation_code"])
            assert o.block is None or tx["block_number"] == o.block, (org, tx_id[:8], tx["block_number"], o.block)
            assert cg.evaluate("get", args=[o.key]) == o.value.encode(), (org, o.key)
    kinds: dict[str, int] = {}
    for o in failed:
        kinds[type(o.error).__name__] = kinds.get(type(o.error).__name__, 0) + 1
    print(f"{len(valid)} VALID, {len(late)} VALID after a commit-status timeout, failures {kinds}; "
          f"all VALID found on {len(gws)} peers; victim {victim}")


def _check_restarted(net, c, victim: str | None, pid: int | None) -> None:
    """The restarted orderer catches up and keeps up with new blocks."""
    if victim is None or pid is None:
        return
    restarted = _pid_of(net, victim)
    assert restarted != pid
    after = c.submit("put", args=[f"ord-{_uid()}-after", "x"], commit_timeout=60)

    def converged() -> dict | None:
        h = net.heights()
        return h if len(set(h.values())) == 1 and h[victim] is not None and h[victim] > after.block_number else None

    heights = _wait(converged, 30, poll=0.5)
    assert heights, net.heights()
