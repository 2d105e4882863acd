"""Fuzz targets: the protocol's validators of what members send, fed hostile variants of valid records.

``spec`` (``JobSpec.from_dict``), ``update_meta`` (``UpdateMeta.from_dict``), ``ballot``
(``Ballot.from_dict``) and ``rule`` (``rule_from_dict``). The input picks one of a few valid
records and mutates it (:mod:`tests.fuzz.hostile`); the validator is called on the result.

Findings: any exception but :class:`ProtocolError`; a refusal with another status, an overlong
message or one that repeats more than 200 characters of the input; an accepted record whose
canonical form has a float or is nested too deeply, is not accepted again, or comes back different
(``from_dict(to_dict(x)) == x`` is what lets the ledger's copy be read back by the nodes).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

from fedfabric_protocol import codec
from fedfabric_protocol.errors import ProtocolError
from fedfabric_protocol.fields import check_json
from fedfabric_protocol.records import Ballot, UpdateMeta, canonical
from fedfabric_protocol.rules import rule_from_dict
from fedfabric_protocol.spec import JobSpec

from .hostile import Decisions, Finding, check_refusal, mutate, texts_in

ORGS = ["Org1MSP", "Org2MSP", "Org3MSP"]


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _spec(job_id: str, **over: Any) -> dict:
    spec = {"job_id": job_id,
            "model": {"arch_id": "mlp-2x3", "arch_hash": h("arch"), "initial_hash": h("v0"),
                      "shape_digest": codec.shape_digest([[2, 3], [2]]), "num_params": 8},
            "hyperparams": {"dataset": "breast_cancer", "arch": "logreg", "lr": "0.01", "epochs": 1,
                            "batch_size": 32, "shards": list(ORGS)},
            "rounds": 3, "privacy": "secure", "aggregation": {"rule": "fedavg"}, "quorum": "2/3",
            "min_participants": 2, "participants": list(ORGS),
            "windows": {"registration_s": 60, "submission_s": 300, "approval_s": 120}}
    spec.update(over)
    return spec


SPECS = [
    _spec("job1"),
    _spec("clear-1", privacy="clear", aggregation={"rule": "trimmed_mean", "trim": 1}, min_participants=3,
          hyperparams={"dataset": "digits", "arch": "mlp", "arch_kwargs": {"hidden": 16}, "partition": "dirichlet",
                       "alpha": "0.5", "seed": 7, "epochs": 2, "lr": "0.05", "batch_size": 16, "optimizer": "adam",
                       "mu": "0.01", "val_fraction": "0.2", "shards": list(ORGS)},
          dp={"enabled": True, "clip_norm_milli": 100, "noise_multiplier_milli": 800, "epsilon_budget_milli": 30000,
              "delta_exp": 5},
          incentives={"reward_per_round": 300, "slash_absent": 10, "slash_anomalous": 20, "slash_no_reveal": 5,
                      "anomaly_factor": 3},
          windows={"registration_s": 60, "submission_s": 300, "reveal_s": 60, "approval_s": 120},
          quorum=[1, 2], max_abs=1 << 20, frac_bits=16, endorsed_max_params=0),
    _spec("adam-1", server_optimizer={"kind": "adam", "lr": "0.01"}),
    _spec("avgm-1", server_optimizer={"kind": "avgm", "lr": "1", "momentum": "0.9"}),
    {k: v for k, v in _spec("defaults", aggregation={"rule": "multi_krum", "krum_f": 0, "krum_m": 2},
                            privacy="clear").items() if k != "participants"},
]


def _meta(**over: Any) -> dict:
    m = {"sha256": h("payload"), "size": 32, "shape_digest": codec.shape_digest([[2, 3], [2]]), "sample_count": 100,
         "dtype": "uint32le", "training": {"start": 1_800_000_000, "end": 1_800_000_050, "epochs": 2, "iterations": 20,
                                           "loss_per_epoch": [693147, 512000], "data_fingerprint": h("data")},
         "metrics": {"train_acc_milli": 870, "note": "ok"}}
    m.update(over)
    return m


METAS = [_meta(), _meta(dp_epsilon_milli=1500, endpoint="node1.org1.example:7443", metrics={})]

BALLOTS = [
    {"approve": True, "aggregate_hash": h("agg"), "model_hash": h("model"), "contributors": list(ORGS),
     "flagged": ["Org2MSP"], "metrics": {"val_acc_milli": 900}, "next_public_key": "ab" * 32},
    {"approve": False, "metrics": {}, "next_public_key": None},
    {"approve": False, "aggregate_hash": h("agg"), "model_hash": h("model"), "contributors": ORGS[:2]},
    {"approve": True, "aggregate_hash": h("agg"), "model_hash": h("model"), "contributors": ORGS[:2],
     "step_hash": h("step"), "state_hash": h("state"), "next_public_key": None},
]

RULES = [{"rule": "fedavg"}, {"rule": "trimmed_mean", "trim": 2}, {"rule": "median"}, {"rule": "krum", "krum_f": 1},
         {"rule": "multi_krum", "krum_f": 1, "krum_m": 2}, {"rule": "multi_krum", "krum_f": 0},
         {"rule": "bulyan", "bulyan_f": 1}]


@dataclass(frozen=True)
class Validator:
    """One validator, its valid records, and what "accepted" must mean for it."""

    name: str
    parse: Callable[[Any], Any]
    again: Callable[[Any], Any]      # parses a canonical form (``to_dict``) back
    bases: tuple

    def one_input(self, data: bytes) -> None:
        d = Decisions(data)
        value = mutate(self.bases[d.below(len(self.bases))], d)
        try:
            obj = self.parse(value)
        except ProtocolError as exc:
            check_refusal(exc, texts_in(value), self.name)
            return
        self.check_accepted(obj)

    def check_accepted(self, obj: Any) -> None:
        out = obj.to_dict()
        try:
            check_json(out, self.name)
            canonical(out)
            back = self.again(out)
        except (ProtocolError, ValueError, TypeError) as exc:
            raise Finding(f"{self.name}: an accepted record's canonical form is refused: {exc}"[:500]) from None
        if back != obj or back.to_dict() != out:
            raise Finding(f"{self.name}: from_dict(to_dict(x)) != x for {out!r:.400}")

    def seeds(self) -> list[bytes]:
        """Each valid record as is, and each with one of its fields replaced by a hostile value."""
        n = len(self.bases)
        return [bytes([i]) for i in range(n)] + [bytes([i, 1, 1, f, 0, 0, p]) for i in range(n)
                                                 for f in range(0, 16, 3) for p in (0, 23, 41, 60)]


def _spec_parse(v: Any) -> JobSpec:
    return JobSpec.from_dict(v, default_participants=list(ORGS))


HARNESSES = {
    "spec": Validator("spec", _spec_parse, JobSpec.from_dict, tuple(SPECS)),
    "update_meta": Validator("update_meta", UpdateMeta.from_dict, UpdateMeta.from_dict, tuple(METAS)),
    "ballot": Validator("ballot", Ballot.from_dict, Ballot.from_dict, tuple(BALLOTS)),
    "rule": Validator("rule", rule_from_dict, rule_from_dict, tuple(RULES)),
}
