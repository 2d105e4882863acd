"""The job spec validator: every bad field named, canonical form accepted back, defaults filled."""
from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings, strategies as st

from fedfabric_protocol import codec
from fedfabric_protocol.errors import ProtocolError
from fedfabric_protocol.spec import JobSpec
from fedfabric_protocol.states import Exchange

ORGS = ["Org1MSP", "Org2MSP", "Org3MSP"]
H = "ab" * 32


def spec(**over):
    s = {"job_id": "job1",
         "model": {"arch_id": "logreg", "arch_hash": H, "initial_hash": H, "shape_digest": H, "num_params": 8},
         "hyperparams": {"dataset": "breast_cancer", "arch": "logreg", "shards": list(ORGS)},
         "rounds": 3, "privacy": "secure", "aggregation": {"rule": "fedavg"}, "quorum": "2/3", "min_participants": 2,
         "participants": list(ORGS), "windows": {"registration_s": 60, "submission_s": 300, "approval_s": 120}}
    s.update(over)
    return s


def _model(**over):
    return {**spec()["model"], **over}


def _hyper(**over):
    return {**spec()["hyperparams"], **over}


BAD = [
    ({"job_id": "bad id!"}, "spec.job_id must match"),
    ({"colour": 1}, "spec: unknown field(s) 'colour'"),
    ({"model": _model(arch_hash="XYZ")}, "spec.model.arch_hash must be a lowercase hex"),
    ({"model": _model(initial_hash=None)}, "spec.model.initial_hash must be a lowercase hex"),
    ({"model": _model(num_params=0)}, "spec.model.num_params=0 out of range"),
    ({"model": _model(extra=1)}, "spec.model: unknown field(s) 'extra'"),
    ({"hyperparams": _hyper(lr=0.01)}, "spec.hyperparams.lr: floats are not allowed"),
    ({"hyperparams": _hyper(lr="fast")}, "spec.hyperparams.lr is not a decimal number"),
    ({"hyperparams": _hyper(lr="100")}, "spec.hyperparams.lr='100' out of range [0.000001, 10]"),
    ({"hyperparams": _hyper(seed="not-a-number")}, "spec.hyperparams.seed must be an integer"),
    ({"hyperparams": _hyper(dataset="x" * (4 << 20))}, "spec.hyperparams.dataset must be one of"),
    ({"hyperparams": _hyper(arch="mlp", arch_kwargs={"hidden": 0})}, "spec.hyperparams.arch_kwargs.hidden=0 out of range"),
    ({"hyperparams": _hyper(arch_kwargs={"hidden": 4})}, "arch_kwargs: unknown field(s) 'hidden' (allowed: none)"),
    ({"hyperparams": _hyper(arch="mlp", arch_kwargs={"channels": 4})},
     "spec.hyperparams.arch_kwargs: unknown field(s) 'channels'"),
    ({"hyperparams": _hyper(shards=["Org1MSP", "Org2MSP"])}, "must name exactly the participants"),
    ({"hyperparams": _hyper(notes={"a": {"b": {}}})}, "spec.hyperparams: unknown field(s) 'notes'"),
    ({"hyperparams": []}, "spec.hyperparams must be a JSON object"),
    ({"rounds": 0}, "spec.rounds=0 out of range"),
    ({"rounds": "3"}, "spec.rounds must be an integer"),
    ({"privacy": "open"}, "spec.privacy must be one of secure, clear"),
    ({"aggregation": {"rule": "mean"}}, "spec.aggregation.rule: unknown rule 'mean' (known: bulyan, fedavg, krum"),
    ({"aggregation": {"rule": "median"}}, "secure mode supports only rules that work on the masked sum (fedavg)"),
    ({"privacy": "clear", "aggregation": {"rule": "trimmed_mean"}}, "spec.aggregation.trim is required"),
    ({"privacy": "clear", "aggregation": {"rule": "median", "trim": 1}}, "spec.aggregation: unknown field(s) 'trim'"),
    ({"privacy": "clear", "aggregation": {"rule": "multi_krum", "krum_f": 1}, "min_participants": 3},
     "rule 'multi_krum' with krum_f=1 needs at least 5 updates, min_participants is 3"),
    ({"privacy": "clear", "aggregation": {"rule": "multi_krum", "krum_f": 0, "krum_m": 4}, "min_participants": 3},
     "needs at least 4 updates, min_participants is 3"),
    ({"privacy": "clear", "aggregation": {"rule": "multi_krum", "krum_f": 0, "krum_m": 0}, "min_participants": 3},
     "spec.aggregation.krum_m=0 out of range"),
    ({"privacy": "clear", "aggregation": {"rule": "trimmed_mean", "trim": 1}, "min_participants": 2},
     "rule 'trimmed_mean' with trim=1 needs at least 3 updates, min_participants is 2"),
    ({"min_participants": 1}, "secure mode needs at least 2"),
    ({"min_participants": 4}, "spec.participants has 3 orgs, fewer than spec.min_participants=4"),
    ({"quorum": "4/3"}, "share in (0, 1]"),
    ({"quorum": 0.66}, "floats are not allowed"),
    ({"quorum": [2, 3, 4]}, "spec.quorum must look like"),
    ({"windows": {"registration_s": 60, "submission_s": 0, "approval_s": 1}}, "spec.windows.submission_s=0"),
    ({"windows": {"registration_s": 60, "submission_s": 10}}, "spec.windows.approval_s is required"),
    ({"windows": {"registration_s": 60, "submission_s": 10, "approval_s": 5, "reveal_s": 0}},
     "spec.windows.reveal_s=0 out of range"),
    ({"incentives": {"slash_no_reveal": -5}}, "spec.incentives.slash_no_reveal=-5 out of range"),
    ({"participants": "Org1MSP"}, "spec.participants must be a list of at most 256 strings"),
    ({"participants": ["Org1MSP", 2]}, "spec.participants[1] must match"),
    ({"participants": ["Org2MSP", "Org1MSP", "Org2MSP"]}, "spec.participants lists Org2MSP more than once"),
    ({"dp": {"enabled": "yes"}}, "spec.dp.enabled must be true or false"),
    ({"dp": {"enabled": True, "clip_norm_milli": 1000}}, "spec.dp.noise_multiplier_milli is required"),
    ({"dp": {"clip_norm_milli": 1000}}, "DP settings given but dp.enabled is false"),
    ({"frac_bits": 8}, "spec.frac_bits=8 out of range"),
    ({"max_abs": 0}, "spec.max_abs=0"),
    ({"endorsed_max_params": -1}, "spec.endorsed_max_params=-1 out of range"),
    ({"incentives": {"reward_per_round": -1}}, "reward_per_round=-1 out of range"),
]


@pytest.mark.parametrize("over,match", BAD, ids=[m[:40] for _, m in BAD])
def test_every_bad_field_is_named(over, match):
    with pytest.raises(ProtocolError) as ei:
        JobSpec.from_dict(spec(**over))
    assert match in ei.value.message
    assert len(ei.value.message) < 400, "an error must not echo the whole input"


def test_deep_nesting_and_non_objects_are_refused():
    deep: dict = {}
    cur = deep
    for _ in range(900):
        cur["a"] = {}
        cur = cur["a"]
    with pytest.raises(ProtocolError, match="nested deeper than 8 levels"):
        JobSpec.from_dict(spec(hyperparams=_hyper(arch_kwargs=deep)))
    with pytest.raises(ProtocolError, match="spec must be a JSON object"):
        JobSpec.from_dict([1])


def test_defaults_and_canonical_form():
    s = JobSpec.from_dict(spec())
    d = s.to_dict()
    assert d["quorum"] == [2, 3] and d["windows"]["reveal_s"] == 300 and d["incentives"]["slash_no_reveal"] == 0
    assert d["hyperparams"]["lr"] == "0.05" and d["hyperparams"]["partition"] == "dirichlet"
    assert d["dp"] == {"enabled": False} and d["max_abs"] == codec.INT32_MAX
    assert d["endorsed_max_params"] == 1_000_000 and s.exchange is Exchange.ENDORSED
    assert JobSpec.from_dict(d) == s and JobSpec.from_dict(d).to_dict() == d
    short = spec(windows={"registration_s": 5, "submission_s": 10, "approval_s": 5})
    assert JobSpec.from_dict(short).windows.reveal_s == 60
    big = JobSpec.from_dict(spec(endorsed_max_params=4))
    assert big.exchange is Exchange.NODES
    nop = spec()
    del nop["participants"]
    with pytest.raises(ProtocolError, match="spec.participants is required"):
        JobSpec.from_dict(nop)
    assert JobSpec.from_dict(nop, default_participants=ORGS).participants == tuple(ORGS)
    assert JobSpec.from_dict(spec(hyperparams=_hyper(lr="0.0100"))).hyperparams.lr == "0.01"


RULES = st.sampled_from([{"rule": "fedavg"}, {"rule": "median"}, {"rule": "trimmed_mean", "trim": 1},
                         {"rule": "multi_krum", "krum_f": 0}, {"rule": "multi_krum", "krum_f": 0, "krum_m": 2}])


@settings(max_examples=60, deadline=None)
@given(rule=RULES, privacy=st.sampled_from(["secure", "clear"]), rounds=st.integers(1, 10_000),
       quorum=st.tuples(st.integers(1, 9), st.integers(9, 20)), lr=st.decimals("0.000001", "10", places=6),
       dp=st.booleans(), windows=st.tuples(st.integers(1, 1000), st.integers(1, 1000), st.integers(1, 1000)))
def test_whatever_the_ledger_stores_is_accepted_back(rule, privacy, rounds, quorum, lr, dp, windows):
    over = {"aggregation": rule, "privacy": privacy, "rounds": rounds, "quorum": list(quorum),
            "hyperparams": _hyper(lr=str(lr)), "min_participants": 3,
            "windows": dict(zip(("registration_s", "submission_s", "approval_s"), windows))}
    if dp:
        over["dp"] = {"enabled": True, "clip_norm_milli": 100, "noise_multiplier_milli": 800,
                      "epsilon_budget_milli": 30000}
    try:
        s = JobSpec.from_dict(spec(**over))
    except ProtocolError:
        return   # e.g. a robust rule in secure mode
    again = JobSpec.from_dict(copy.deepcopy(s.to_dict()))
    assert again == s and again.to_dict() == s.to_dict()
