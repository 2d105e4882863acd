"""Jobs above ``endorsed_max_params``: payloads never enter a transaction, nodes exchange them, and the round
finalizes on a stake quorum of identical results."""
import pytest

from . import identities as ids
from .harness import ORGS, T0, Ledger, init, job_spec, meta_for
from .rounds_helper import Consortium, deltas_for

T = ids.trainer


def _started(privacy="secure") -> tuple[Ledger, Consortium]:
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(privacy=privacy, endorsed_max_params=4))
    c = Consortium(led)
    c.register(1, ORGS)
    c.start(1)
    return led, c


def _submit_meta(led, c, r, who, deltas):
    for m in who:
        p = c.payload(r, m, deltas[m])
        c.payloads.setdefault(r, {})[m] = p
        led.call(T(m), "submit_update", "job1", r, meta_for(p, c.samples[m], endpoint=f"127.0.0.1:{9960 + ORGS.index(m)}"))


def test_the_payload_never_enters_the_transaction_and_the_endpoint_is_required():
    led, c = _started()
    assert c.round(1)["exchange"] == "nodes"
    p = c.payload(1, ORGS[0], deltas_for(ORGS)[ORGS[0]])
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(p, endpoint="127.0.0.1:9960"),
               transient={"update": p}, match="payloads travel node to node, not in the transaction")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(p), match="meta.endpoint")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(p, endpoint="http://x"), match="meta.endpoint must match")
    _submit_meta(led, c, 1, ORGS, deltas_for(ORGS))
    assert "fedfabricUpdates" not in led.stub.private
    assert led.last_event.json()["endpoint"] == "127.0.0.1:9962"


def test_finalizes_on_the_hash_quorum_without_recomputation():
    led, c = _started()
    _submit_meta(led, c, 1, ORGS, deltas_for(ORGS))
    res = c.result(1)
    c.vote(1, ORGS, res)
    out = c.finalize(1)
    assert out["state"] == "finalized" and out["outcome"]["aggregate"]["recomputed"] is False
    v = led.call(T(ORGS[0]), "get_version", "job1", "1")
    assert v["aggregate_hash"] == res["aggregate_hash"] and v["exchange"] == "nodes"


def test_a_corrupt_update_is_left_out_by_the_quorum_after_its_seeds_are_revealed():
    led, c = _started()
    _submit_meta(led, c, 1, ORGS, deltas_for(ORGS))     # Org3's node then serves bytes that fail the hash
    honest = ORGS[:2]
    led.reject(T(ORGS[0]), "vote", "job1", 1, c.ballot(1, ORGS[0], c.result(1, honest)),
               match="waiting for seed reveals from Org1MSP, Org2MSP for Org3MSP", status=409)
    c.reveal(1, honest, ["Org3MSP"])                     # allowed at once: Org3 did submit
    res = c.result(1, honest)
    c.vote(1, honest, res)
    c.vote(1, [ORGS[2]], c.result(1))                    # Org3 votes for its own view: no quorum for it
    out = c.finalize(1)
    assert out["state"] == "finalized" and out["outcome"]["contributors"] == honest
    assert out["outcome"]["settlement"]["slashed"] == {"Org3MSP": 10}       # treated as dropped
    assert out["outcome"]["left_out"] == ["Org3MSP"]


def test_with_payloads_on_the_peers_a_submitter_cannot_be_left_out():
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec())
    c = Consortium(led)
    c.register(1, ORGS)
    c.start(1)
    c.submit(1, deltas_for(ORGS))
    led.reject(T(ORGS[0]), "reveal_seeds", "job1", 1, ["Org3MSP"], transient={"seeds": b"{}"},
               match="only orgs that did not submit are left out", status=409)


def test_clear_mode_node_exchange_needs_no_reveals():
    led, c = _started("clear")
    _submit_meta(led, c, 1, ORGS, deltas_for(ORGS))
    res = c.result(1, ORGS[:2])
    c.vote(1, ORGS[:2], res)
    led.t = T0 + 300 + 300 + 120 + 1
    out = c.finalize(1)
    assert out["state"] == "finalized" and out["outcome"]["contributors"] == ORGS[:2]
