"""An endorser whose peer has not committed the latest block yet refuses a write with 409 ("round 1 is
collecting ... 2 of 3 submitted"), the status of "done already": the node sends the same update or
ballot again on the next event or tick instead of taking the duty as done (with 7 of 10 orgs endorsing
every write this happens in most rounds, and a round left with too few ballots waits for its window)."""
from __future__ import annotations

import pytest

from fedfabric.client import Rejected
from fedfabric.node import runtime

from tests.chaincode.harness import ORGS

from .memledger import drive
from .test_node_robustness import FlakyClient, _world
from .test_nodes_memledger import _job


class LaggingEndorser(FlakyClient):
    """Its first ``times`` calls of ``fn`` are refused with 409 'not yet', as by a lagging endorser."""

    def _call(self, fn, args, transient):
        if fn == self.flaky_fn and self.left > 0:
            self.left -= 1
            self.refused.append((fn, args, dict(transient or {})))
            raise Rejected(fn, "round 1 is collecting until 1796219817 (2 of 3 submitted)", 409, "lagging peer")
        return super(FlakyClient, self)._call(fn, args, transient)


@pytest.mark.parametrize("fn", ["vote", "submit_update"])
def test_a_409_from_a_lagging_endorser_is_sent_again(make_node, fn):
    lagging = {m: (lambda led, m: LaggingEndorser(led, m, fn=fn, times=2)) for m in ORGS}
    doc = _job(f"j-lag-{fn}", rounds=1, windows={"registration_s": 60, "submission_s": 600, "approval_s": 600})
    led, admin, nodes = _world(make_node, doc, lagging)
    computed = []
    for n in nodes:
        real = n._result
        n._result = lambda real=real, n=n: computed.append(n.msp) or real()
    drive(led, nodes, max_steps=400)
    v1 = admin.get_version(doc["job_id"], 1)
    assert [c["msp_id"] for c in v1["contributors"]] == ORGS
    assert sorted(a["msp_id"] for a in v1["approvals"]) == ORGS          # every ballot made it
    for n in nodes:
        assert n.client.left == 0 and len(n.client.refused) == 2
        refused = [call[1] for call in n.client.refused]
        assert refused[0] == refused[1]                                   # the same bytes / ballot again
    if fn == "vote":
        assert sorted(computed) == ORGS                                   # computed once per org, sent thrice


def test_a_409_that_persists_is_given_up_after_the_retries(make_node, monkeypatch):
    monkeypatch.setattr(runtime, "CONFLICT_RETRIES", 3)
    stuck = {ORGS[2]: lambda led, m: LaggingEndorser(led, m, fn="vote", times=10**6)}
    doc = _job("j-lag-stuck", rounds=1, windows={"registration_s": 60, "submission_s": 600, "approval_s": 600})
    led, admin, nodes = _world(make_node, doc, stuck)
    drive(led, nodes, until=lambda: ("vote", 1) in nodes[2]._done, max_steps=400)
    assert len(nodes[2].client.refused) == 4                              # the first try and 3 more
