"""What a running node survives (transient refusals, corrupt bytes, a final refusal) and what stops it with
a clear error (unknown job, not a participant, a recipe it cannot follow) -- on the in-memory ledger."""
from __future__ import annotations

import hashlib
import logging

import pytest

from fedfabric.client import Rejected
from fedfabric.node.bootstrap import create_job, job_spec
from fedfabric.node.jobfile import parse_job
from fedfabric.artifacts import model_hash
from fedfabric.node.runtime import NodeError

from tests.chaincode.harness import ORGS, init

from .memledger import MemClient, drive, wall_clock_ledger
from .test_nodes_memledger import MSP_OF, _job


class FlakyClient(MemClient):
    """Refuses the first ``times`` calls of ``fn`` with ``status`` (a peer saying 'not now')."""

    def __init__(self, *a, fn: str, status: int | None = 503, times: int = 1, **kw) -> None:
        super().__init__(*a, **kw)
        self.flaky_fn, self.flaky_status, self.left = fn, status, times
        self.refused: list[tuple] = []

    def _call(self, fn, args, transient):
        if fn == self.flaky_fn and self.left > 0:
            self.left -= 1
            self.refused.append((fn, args, dict(transient or {})))
            raise Rejected(fn, "the update of Org2MSP in round 1 is not available on this peer (yet)",
                           self.flaky_status, "flaky peer")
        return super()._call(fn, args, transient)


def _world(make_node, doc, clients=None):
    """Ledger with the job of ``doc``; one node per org, org i using ``clients[i]`` if given."""
    led = wall_clock_ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    create_job(admin, parse_job(doc), MSP_OF)
    clients = clients or {}
    nodes = [make_node(led, m, doc["job_id"], client=clients[m](led, m) if m in clients else None, job_wait=0.0)
             for m in ORGS]
    return led, admin, nodes


def test_a_503_on_submit_is_retried_on_the_next_tick_with_the_same_bytes(make_node, caplog):
    flaky = {ORGS[1]: lambda led, m: FlakyClient(led, m, fn="submit_update")}
    led, admin, nodes = _world(make_node, _job("j-503", rounds=1), flaky)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        drive(led, nodes)
    client = nodes[1].client
    assert client.left == 0 and len(client.refused) == 1          # it was refused once …
    v1 = admin.get_version("j-503", 1)
    assert [c["msp_id"] for c in v1["contributors"]] == ORGS       # … and still contributed
    resent = {c["msp_id"]: c["update_hash"] for c in v1["contributors"]}[ORGS[1]]
    assert hashlib.sha256(client.refused[0][2]["update"]).hexdigest() == resent   # the very same payload
    text = caplog.text
    assert "submit_update refused for now" in text and "503" in text and "retrying on the next tick" in text


@pytest.mark.parametrize("fn,status", [("register", 503), ("vote", None), ("vote", 503), ("finalize_round", 503)])
def test_transient_refusals_of_reads_and_writes_do_not_stop_the_node(make_node, caplog, fn, status):
    flaky = {m: (lambda led, m: FlakyClient(led, m, fn=fn, status=status, times=2)) for m in ORGS}
    led, admin, nodes = _world(make_node, _job(f"j-{fn}", rounds=1), flaky)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        drive(led, nodes)
    assert admin.get_job(f"j-{fn}")["rounds_finalized"] == 1
    assert any(n.client.refused for n in nodes)
    assert "retrying on the next tick" in caplog.text


def test_a_restarted_node_fetches_lost_versions_from_another_node_and_refuses_corrupt_bytes(make_node, caplog):
    led, admin, nodes = _world(make_node, _job("j-lost", rounds=2))
    drive(led, nodes)
    v1, v2 = (admin.get_version("j-lost", v) for v in (1, 2))
    for h in (v1["model_hash"], v2["model_hash"]):           # org3's node lost its models …
        nodes[2].store.path(h).unlink()
    bad = nodes[0].store.path(v2["model_hash"])              # … and org1's copy of version 2 went bad on disk
    bad.write_bytes(bytes(bad.stat().st_size))
    reborn = make_node(led, ORGS[2], "j-lost", workdir=nodes[2].dir)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        drive(led, [reborn])                                 # the job is complete: it only catches up
    assert reborn.store.has(v2["model_hash"]) and model_hash(reborn.store.get_model(v2["model_hash"])) == \
        v2["model_hash"]
    assert any("Org1MSP's node" in r.getMessage() and "trying another node" in r.getMessage()
               for r in caplog.records)                      # refused org1's bytes, took org2's


def test_a_final_refusal_is_logged_as_an_error_and_the_round_recovers(make_node, caplog):
    bad = {ORGS[2]: lambda led, m: FlakyClient(led, m, fn="submit_update", status=400)}
    doc = _job("j-400", rounds=1, windows={"registration_s": 30, "submission_s": 3, "reveal_s": 20,
                                           "approval_s": 20})
    led, admin, nodes = _world(make_node, doc, bad)
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        drive(led, nodes, pause=0.02)
    rnd = admin.get_round("j-400", 1)
    assert rnd.state.value == "finalized" and rnd.outcome["left_out"] == [ORGS[2]]   # seeds revealed for it
    assert any(r.levelno == logging.ERROR and "submit_update refused by the contract" in r.getMessage()
               for r in caplog.records)


def test_unknown_job_is_waited_for_then_a_clear_error(make_node):
    led = wall_clock_ledger()
    init(led)
    node = make_node(led, ORGS[0], "no-such-job", job_wait=0.3)
    with pytest.raises(NodeError, match="job 'no-such-job' does not exist on the ledger"):
        node.sync()        # this peer may lag behind the one that created it: it waited job_wait first


def test_a_non_participant_stops_at_once_and_the_participants_run_the_job(make_node):
    led, admin, nodes = _world(make_node, _job("j-two", rounds=1, participants=["org1", "org2"]))
    assert admin.get_job("j-two")["spec"]["participants"] == ["Org1MSP", "Org2MSP"]
    with pytest.raises(NodeError, match="Org3MSP is not a participant of job j-two"):
        nodes[2].sync()
    drive(led, nodes[:2])
    v1 = admin.get_version("j-two", 1)
    assert [c["msp_id"] for c in v1["contributors"]] == ["Org1MSP", "Org2MSP"]
    assert "register" not in nodes[2].client.calls
    # the two did not wait for a third org's registration window (30 s): the electorate had registered
    r1 = admin.get_round("j-two", 1)
    assert r1.started_at - r1.opened_at < 5


def test_a_recipe_this_node_cannot_follow_is_a_clear_error(make_node):
    led = wall_clock_ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    spec = job_spec(parse_job(_job("j-mismatch")), MSP_OF)
    spec["model"] = {**spec["model"], "initial_hash": "0" * 64}     # not what this recipe builds
    admin.create_job(spec)
    node = make_node(led, ORGS[0], "j-mismatch", job_wait=0.0)
    with pytest.raises(NodeError, match="initial model built here differs"):
        node.sync()


def test_an_update_that_cannot_be_encoded_sits_the_round_out_without_crashing(make_node, caplog):
    from fedfabric.fl.fixedpoint import FixedPointError

    doc = _job("j-nan", rounds=1, windows={"registration_s": 30, "submission_s": 3, "reveal_s": 20,
                                           "approval_s": 20})
    led, admin, nodes = _world(make_node, doc)

    def diverged(*a, **kw):
        raise FixedPointError("non-finite value in update")

    nodes[2].sync()
    nodes[2].recipe.encode = diverged
    with caplog.at_level(logging.WARNING, logger="fedfabric.node"):
        drive(led, nodes, pause=0.02)
    assert admin.get_round("j-nan", 1).outcome["left_out"] == [ORGS[2]]
    assert "update cannot be encoded (non-finite value in update)" in caplog.text
