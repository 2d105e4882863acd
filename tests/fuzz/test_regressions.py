"""Every input the fuzzers found that broke the shim or the contract: replayed through its harness, and the
fix checked directly."""
from __future__ import annotations

import base64
import json

import pytest
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2 as shim

from fabshim.errors import ShimError
from fabshim.handler import Handler

from fabshim.memstub import MemoryStub
from fabshim.stub import Response
from fedfabric_protocol.errors import ProtocolError
from fedfabric_protocol.records import Ballot, UpdateMeta
from fedfabric_protocol.rules import rule_from_dict
from fedfabric_protocol.spec import JobSpec
from tests.chaincode.harness import T0

from . import frames, harness_contract, harness_handler, harness_router, hostile
from . import harness_validators as hv

M = shim.ChaincodeMessage

# handler harness, found in its first 200 executions: the peer answers GET_STATE_BY_RANGE with bytes
# that are not a QueryResponse; the stub let protobuf's DecodeError out (now ShimError)
MALFORMED_QUERY_RESPONSE = base64.b64decode(
    "AggCAggEGQgFGg0KBXJhbmdlCgFhCgF6IgJ0MToCY2gUCA0aEAoICgYKAWsSAXYQARoClTESCA0aDgoICgYKAWsSAXYaAnEx")

# issue 13: a message of a type the protocol does not define ended the stream with a ValueError
UNKNOWN_TYPE = frames.join([M(type=M.REGISTERED).SerializeToString(), M(type=M.READY).SerializeToString(),
                            M(type=999, txid="t").SerializeToString()])


@pytest.mark.parametrize("data", [MALFORMED_QUERY_RESPONSE, UNKNOWN_TYPE], ids=["malformed-query", "type-999"])
def test_handler_regression_inputs(data: bytes) -> None:
    harness_handler.one_input(data)


def test_seeds_pass_both_harnesses() -> None:
    for data in harness_handler.seeds():
        harness_handler.one_input(data)
    for data in harness_router.seeds():
        harness_router.one_input(data)


def test_malformed_peer_answer_is_a_shim_error() -> None:
    seen: list[BaseException] = []

    class Range:
        def invoke(self, stub):
            try:
                list(stub.get_state_by_range("a", "z"))
            except Exception as exc:
                seen.append(exc)
            raise RuntimeError("done")

    h = harness_handler.FuzzHandler(Range(), iter([M(type=M.RESPONSE, payload=b"\x08\x0d\x1a").SerializeToString()]))
    for m in (M(type=M.REGISTERED), M(type=M.READY)):
        assert h.dispatch(m)
    tx = M(type=M.TRANSACTION, txid="t1", channel_id="ch",
           payload=chaincode_pb2.ChaincodeInput(args=[b"range"]).SerializeToString())
    assert h.dispatch(tx)
    assert len(seen) == 1 and isinstance(seen[0], ShimError)
    assert str(seen[0]) == "malformed query response from the peer (not a QueryResponse)"


def test_unknown_type_is_answered_and_the_handler_goes_on() -> None:
    h = Handler(object(), "cc:1", harness_handler.InlineExecutor())
    assert h.dispatch(M(type=999, txid="abc", channel_id="ch"))
    reply = h._out.get_nowait()
    assert (reply.type, reply.txid, reply.channel_id) == (M.ERROR, "abc", "ch")
    assert h.dispatch(M(type=M.REGISTERED)) and h.state == "established"


# ---- the contract's argument parsing and validators (harnesses spec, update_meta, ballot, rule, contract) ----
BIG = int("1" * 4300)   # the longest integer Python's JSON parser accepts


def _spec(**over):
    return {**hv.SPECS[0], **over}


def _hyper(**over):
    return {**hv.SPECS[0]["hyperparams"], **over}


def _nested_list(depth: int) -> list:
    out: list = []
    for _ in range(depth):
        out = [out]
    return out


VALIDATOR_REGRESSIONS = [
    # found by the harnesses: an out-of-range integer was repeated whole (4300 digits)
    ("spec-int-4300-digits", lambda: JobSpec.from_dict(_spec(dp={"enabled": True, "clip_norm_milli": 1,
                                                              "noise_multiplier_milli": 1, "epsilon_budget_milli": 1,
                                                              "delta_exp": BIG})),
     "spec.dp.delta_exp=1111111111"),
    ("meta-int-4300-digits", lambda: UpdateMeta.from_dict({**hv.METAS[0], "sample_count": BIG}), "meta.sample_count="),
    ("rule-int-4300-digits", lambda: rule_from_dict({"rule": "bulyan", "bulyan_f": BIG}), "spec.aggregation.bulyan_f="),
    ("quorum-list-4300-digits", lambda: JobSpec.from_dict(_spec(quorum=[BIG, BIG])), "must be a share in (0, 1]"),
    # "1e-999990" is 9 characters and was written out as a decimal of a million characters
    ("decimal-a-million-places", lambda: JobSpec.from_dict(_spec(hyperparams=_hyper(mu="1e-999990"))),
     "spec.hyperparams.mu='1e-999990' has more than 18 decimal places"),
    ("optimizer-decimal-places", lambda: JobSpec.from_dict(_spec(server_optimizer={"kind": "avgm",
                                                                                   "momentum": "1e-99999"})),
     "spec.server_optimizer.momentum='1e-99999' has more than 18 decimal places"),
    # patterns ended with $, which also matches before a final newline: "j1\n" was a valid id, and a key
    # with a newline was a "different" key (its reuse not noticed)
    ("job-id-trailing-newline", lambda: JobSpec.from_dict(_spec(job_id="job1\n")), "spec.job_id must match"),
    ("participant-trailing-newline", lambda: JobSpec.from_dict(_spec(participants=["Org1MSP", "Org2MSP", "Org3MSP\n"])),
     "spec.participants[2] must match"),
    ("contributor-trailing-newline", lambda: Ballot.from_dict({**hv.BALLOTS[0], "contributors": ["Org1MSP\n"],
                                                               "flagged": []}),
     "ballot.contributors[0] must match"),
    ("next-key-trailing-newline", lambda: Ballot.from_dict({**hv.BALLOTS[1], "next_public_key": "ab" * 32 + "\n"}),
     "ballot.next_public_key must be a lowercase hex"),
    ("endpoint-trailing-newline", lambda: UpdateMeta.from_dict({**hv.METAS[0], "endpoint": "node1:7443\n"}),
     "meta.endpoint must match"),
    # JSON's "\ud800" gives a lone surrogate, which no UTF-8 log line or file can carry
    ("metric-lone-surrogate", lambda: UpdateMeta.from_dict({**hv.METAS[0], "metrics": {"x": "\ud800"}}),
     "meta.metrics.x: not valid Unicode text"),
    ("metric-name-lone-surrogate", lambda: Ballot.from_dict({**hv.BALLOTS[1], "metrics": {"\ud800": 1}}),
     "keys must be strings of valid Unicode text"),
    # show() took repr() of whatever it was given: a value nested deeper than repr goes raised RecursionError
    ("rule-name-too-deep-to-show", lambda: rule_from_dict({"rule": _nested_list(5000)}),
     "spec.aggregation.rule: unknown rule <a list too large to show>"),
]


@pytest.mark.parametrize("call,match", [r[1:] for r in VALIDATOR_REGRESSIONS], ids=[r[0] for r in VALIDATOR_REGRESSIONS])
def test_validator_regressions(call, match: str) -> None:
    with pytest.raises(ProtocolError) as ei:
        call()
    assert match in ei.value.message
    assert ei.value.status == 400 and len(ei.value.message) <= 400, ei.value.message[:500]


def _call(caller: str, fn: str, *args: str, fresh: bool = False):
    """``fn(*args)`` by ``caller`` on the contract harness's world (or a ledger nobody initialized), the world
    put back afterwards, and the harness's properties checked on the answer."""
    stub = MemoryStub() if fresh else harness_contract.STUB
    raw = [fn.encode(), *(a.encode("utf-8", "surrogatepass") for a in args)]
    try:
        resp = stub.run(harness_contract.LEDGER.cc, harness_contract.IDENTITIES[caller], raw, T0)
        harness_contract.check_response(resp, fn, list(args), fresh=stub if fresh else None)
    finally:
        if harness_contract.STUB.block != harness_contract.PRISTINE[5]:
            harness_contract._restore()
    return resp


CONTRACT_REGRESSIONS = [
    # found by the contract harness: ids that cannot be part of a composite key (NUL, U+10FFFF, lone
    # surrogates) ended in "internal error ... ValueError"
    ("org-history-nul", "trainer1", "org_history", ["Org1\x00"], 400, "msp_id must match"),
    ("get-job-nul", "trainer1", "get_job", ["a\x00b"], 400, "job_id must match"),
    ("get-version-max-rune", "trainer1", "get_version", ["jdone", "\U0010ffff"], 404, "has no version or alias"),
    ("key-history-surrogate", "auditor1", "key_history", ["job", '["\\ud800"]'], 400, "attrs must be a JSON list"),
    ("approve-nul", "admin2", "approve_stake_adjustment", ["\x00"], 400, "proposal_id must match"),
    ("transfer-nul", "admin1", "transfer_stake", ["\x00", "1"], 400, "to_msp must match"),
    # "²".isdigit() is true and int("²") raises
    ("get-version-superscript-two", "trainer1", "get_version", ["jdone", "²"], 404, "has no version or alias '²'"),
    # echoes of the whole argument
    ("get-version-4000-digits", "trainer1", "get_version", ["jdone", "9" * 4000], 404, "(4002 characters)"),
    ("get-job-3000-characters", "trainer1", "get_job", ["x" * 3000], 400, "(3002 characters)"),
    ("round-report-3000-characters", "auditor1", "round_report", ["x" * 3000, "1"], 400, "(3002 characters)"),
    ("register-round-4000-digits", "trainer2", "register", ["jreg", "9" * 4000, "cd" * 32], 409, "(4000 characters)"),
    ("alias-version-4000-digits", "admin1", "set_alias", ["jdone", "staging", "9" * 4000], 404, "(4000 characters)"),
    ("transfer-amount-4000-digits", "admin1", "transfer_stake", ["Org2MSP", "9" * 4000], 400, "(4000 characters)"),
    ("init-300-unknown-fields", "admin1", "init_consortium",
     [json.dumps([{"msp_id": "Org1MSP", "stake": 1, **{f"k{i}": i for i in range(300)}}]), "2/3"], 400,
     "and 295 more"),
    # a bookmark outside the jobs' key range listed other records (the consortium, the policy) as jobs
    ("list-jobs-foreign-bookmark", "trainer1", "list_jobs", ["10", "\x00consortium\x00"], 400,
     "is not one list_jobs returned"),
    # trailing newlines, through the contract
    ("register-key-newline", "trainer2", "register", ["jreg", "1", "cd" * 32 + "\n"], 400, "64 lowercase hex"),
    ("create-job-id-newline", "admin1", "create_job", [json.dumps(hv._spec("jx\n"))], 400, "spec.job_id must match"),
]


@pytest.mark.parametrize("caller,fn,args,status,match", [r[1:] for r in CONTRACT_REGRESSIONS],
                         ids=[r[0] for r in CONTRACT_REGRESSIONS])
def test_contract_regressions(caller: str, fn: str, args: list, status: int, match: str) -> None:
    resp = _call(caller, fn, *args, fresh=fn == "init_consortium")
    assert (resp.status, match in resp.message) == (status, True), resp.message[:500]


# found by the contract fuzzer: get_round used its job id unchecked in a key and its message
def test_get_round_checks_its_job_id() -> None:
    for job_id in ("a\x00b", "x" * 3000):
        resp = harness_contract.STUB.run(harness_contract.LEDGER.cc, harness_contract.IDENTITIES["trainer1"],
                                         [b"get_round", job_id.encode(), b"1"], T0)
        assert resp.status == 400 and "job_id must match" in resp.message and len(resp.message) < 300, resp.message


# found by the contract fuzzer: the membership transactions used their proposal ids unchecked (key and
# message), repeated the action whole and let a trailing newline through the MSP id pattern
@pytest.mark.parametrize("fn,args", [("get_membership", ["a\x00b"]), ("approve_membership", ["x" * 3000, "ab" * 32]),
                                     ("propose_membership", ["p9", "add" * 800, "Org9MSP", "Org9", "ab" * 32, "cd" * 32,
                                                             "why"]),
                                     ("propose_membership", ["p9", "add", "Org9MSP\n", "Org9", "ab" * 32, "cd" * 32,
                                                             "why"])],
                         ids=["get-nul", "approve-3000", "propose-action-2400", "propose-msp-newline"])
def test_membership_checks_its_arguments(fn: str, args: list) -> None:
    who = "trainer1" if fn == "get_membership" else "admin1"
    resp = _call(who, fn, *args)
    assert resp.status == 400 and len(resp.message) < 300, resp.message[:300]


def test_the_harness_reports_internal_errors() -> None:
    for fn in ("get_job", "get_round", "get_membership"):
        with pytest.raises(hostile.Finding, match=f"internal error in {fn}"):
            harness_contract.check_response(Response(500, f"internal error in {fn}: ValueError: ..."), fn, ["a\x00b"])


def test_validator_seeds_are_accepted_or_refused_cleanly() -> None:
    for h in hv.HARNESSES.values():
        for data in h.seeds():
            h.one_input(data)
    for data in harness_contract.seeds():
        harness_contract.one_input(data)
