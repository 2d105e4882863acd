"""Check an exported model file against the ledger, and export ledger versions as checked files."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import ArtifactError, ArtifactStore, export_model, load_model_file, model_hash
from .common import ask, short, versions_by_number
from .errors import AuditError, BadInput
from .lineage import FINAL_STATUSES, ROOT_STATUS, lineage

ACCEPTED_STATUSES = (*FINAL_STATUSES, ROOT_STATUS)


@dataclass
class Check:
    """One verification step: its name, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str


@dataclass
class VerifyResult:
    """The verdict on a model file; ``ok`` only if every check passed."""

    file: str
    ok: bool
    computed_hash: str
    claimed_hash: str | None
    claimed_job: str | None
    claimed_version: int | None
    job_id: str | None = None
    version: int | None = None
    status: str | None = None
    lineage: list[dict] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [c.detail for c in self.checks if not c.ok]

    def summary(self) -> str:
        if self.ok:
            return (f"{self.file}: verified — version {self.version} of job {self.job_id} "
                    f"({self.status}, model hash {short(self.computed_hash, 16)}), lineage intact back to version 0")
        return f"{self.file}: verification FAILED — " + "; ".join(self.problems)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["problems"] = self.problems
        return d


def _state_dict_mismatch(doc: dict) -> str | None:
    """Where the state dict and the flat vector first disagree (``None`` if they agree)."""
    vec = doc["vector"]
    i = 0
    for name, t in doc["state_dict"].items():
        a = t.detach().cpu().numpy().astype(np.float32).ravel()
        b = vec[i:i + a.size]
        if b.size != a.size:
            return f"the state dict has more values than the flat vector ({vec.size}) from tensor '{name}' on"
        diff = np.flatnonzero(a.view(np.uint32) != b.view(np.uint32))
        if diff.size:
            j = int(diff[0])
            return (f"state dict tensor '{name}' element {j} is {a[j]!r}, the flat vector has {b[j]!r} "
                    f"(parameter {i + j}; {diff.size} value(s) differ in this tensor)")
        i += a.size
    if i != vec.size:
        return f"the flat vector has {vec.size} values, the state dict {i}"
    return None


def model_architecture(job: dict) -> tuple[str, dict]:
    """(arch_id, full constructor kwargs) of a job's model, checked against the spec's ``arch_hash``.

    Takes ``hyperparams.arch`` / ``arch_kwargs`` from the job spec; if those hash differently (the
    node completes input size and classes from the data set), completes them from the data set
    the way the nodes do (``fl.task.resolve_arch_kwargs``).
    """
    from ..fl.models import architecture_hash

    spec = job["spec"]
    hp = spec.get("hyperparams") or {}
    arch = hp.get("arch") or spec["model"]["arch_id"]
    want = spec["model"]["arch_hash"]
    kw = dict(hp.get("arch_kwargs") or {})
    if architecture_hash(arch, kw) == want:
        return arch, kw
    if "dataset" in hp:
        try:
            from fedfabric_protocol.spec import Hyperparams

            from ..fl.datasets import load_dataset
            from ..fl.task import resolve_arch_kwargs

            hyper = Hyperparams.from_dict(hp)
            full = resolve_arch_kwargs(hyper, load_dataset(hyper.dataset, seed=hyper.seed))
        except Exception as exc:  # noqa: BLE001 - report why the architecture cannot be rebuilt
            raise BadInput(f"cannot rebuild the model of job {job['job_id']}: {type(exc).__name__}: {exc}") from None
        if architecture_hash(arch, full) == want:
            return arch, full
    raise BadInput(f"cannot rebuild the model of job {job['job_id']}: no known arguments of architecture "
                   f"{arch!r} hash to the spec's arch_hash {short(want)}")


def verify(client: Any, model_file: Path | str, store: ArtifactStore | None = None) -> VerifyResult:
    """Verify an exported model file against the ledger (see ``fedfabric audit verify --help``).

    Raises :class:`BadInput` when the file is missing or not a fedfabric model file. Otherwise
    returns a :class:`VerifyResult` whose ``checks`` say, each: the parameters hash to the hash the
    file claims (the hash is always recomputed, never trusted); the state dict equals the flat
    vector; the claimed job exists; a version of that job has exactly this model hash and it is the
    claimed version; that version is finalized (or version 0); its lineage back to version 0 holds
    (:func:`lineage`); the file's embedded lineage matches the ledger's; the architecture and
    parameter count match the job spec; and, with ``store``, that the store's copy checks out.
    """
    try:
        doc = load_model_file(model_file)
    except ArtifactError as exc:
        raise BadInput(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - right format tag, wrong insides (e.g. a list where a tensor goes)
        raise BadInput(f"{model_file}: malformed fedfabric model file ({type(exc).__name__}: {exc})") from None
    computed = doc["computed_hash"]
    claimed_job, claimed_version = doc.get("job_id"), doc.get("version")
    res = VerifyResult(file=str(model_file), ok=False, computed_hash=computed, claimed_hash=doc.get("model_hash"),
                       claimed_job=claimed_job, claimed_version=claimed_version)
    add = res.checks.append

    if computed == doc.get("model_hash"):
        add(Check("file hash", True, f"the parameters hash to {short(computed, 16)}, as the file says"))
    else:
        add(Check("file hash", False, f"the parameters were changed: they hash to {short(computed, 16)}, "
                                      f"but the file says {short(doc.get('model_hash'), 16)}"))
    mismatch = _state_dict_mismatch(doc)
    add(Check("state dict", mismatch is None, "the state dict equals the flat parameter vector" if mismatch is None
              else f"the state dict and the flat vector disagree: {mismatch}"))

    try:
        job = ask(client.get_job, str(claimed_job))
    except BadInput as exc:
        add(Check("job", False, f"the file claims job {claimed_job!r}, which the ledger does not know ({exc})"))
        return _finish(res)
    add(Check("job", True, f"job {claimed_job} is on the ledger"))
    res.job_id = claimed_job
    versions = versions_by_number(ask(client.list_versions, claimed_job))
    matches = sorted(n for n, v in versions.items() if v["model_hash"] == computed)
    claimed_rec = versions.get(claimed_version) if isinstance(claimed_version, int) else None
    if not matches:
        where = (f"; the ledger's version {claimed_version} has model hash {short(claimed_rec['model_hash'], 16)}"
                 if claimed_rec else f"; the job has no version {claimed_version!r}")
        add(Check("on ledger", False, f"no version of job {claimed_job} has model hash {short(computed, 16)}{where}"))
        return _finish(res)
    n = claimed_version if claimed_version in matches else matches[-1]
    rec = versions[n]
    res.version, res.status = n, rec.get("status")
    add(Check("on ledger", True, f"version {n} of job {claimed_job} has model hash {short(computed, 16)}"))
    if n != claimed_version:
        add(Check("version", False, f"the file says version {claimed_version}, but these parameters are version {n} "
                                    f"on the ledger"))
    if rec.get("status") not in ACCEPTED_STATUSES or (rec.get("status") == ROOT_STATUS) != (n == 0):
        add(Check("status", False, f"version {n} is {rec.get('status')!r}, not finalized"))
    else:
        add(Check("status", True, f"version {n} is {rec.get('status')}"))
    try:
        res.lineage = lineage(client, claimed_job, str(n))
        add(Check("lineage", True, f"{len(res.lineage)} versions, every link from version {n} back to version 0 holds"))
    except AuditError as exc:
        add(Check("lineage", False, str(exc)))
    if res.lineage:
        mine = [(int(x.get("version", -1)), x.get("model_hash")) for x in doc.get("lineage") or []]
        ledger = [(x["version"], x["model_hash"]) for x in res.lineage]
        if mine == ledger:
            add(Check("embedded lineage", True, "the lineage stored in the file matches the ledger's"))
        else:
            bad = next((f"version {a[0]}: file {short(a[1])} vs ledger {short(b[1])}" for a, b in zip(mine, ledger)
                        if a != b), f"file lists {len(mine)} versions, ledger {len(ledger)}")
            add(Check("embedded lineage", False, f"the lineage stored in the file differs from the ledger's ({bad})"))
    spec_model = job["spec"]["model"]
    if int(spec_model.get("num_params", doc["vector"].size)) != doc["vector"].size:
        add(Check("architecture", False, f"the file has {doc['vector'].size} parameters, the job's model "
                                         f"{spec_model['num_params']}"))
    else:
        from ..fl.models import architecture_hash

        arch_ok = architecture_hash(str(doc.get("arch_id")), dict(doc.get("arch_kwargs") or {})) == spec_model["arch_hash"]
        add(Check("architecture", arch_ok, f"{doc.get('arch_id')} {doc.get('arch_kwargs')} "
                  + ("is the job's architecture" if arch_ok else "does not hash to the job's arch_hash "
                     f"{short(spec_model['arch_hash'])}")))
    if store is not None:
        if not store.has(computed):
            add(Check("store", True, f"the store {store.root} has no copy (not required)"))
        else:
            try:
                same = model_hash(store.get_model(computed)) == computed
                add(Check("store", same, f"the store's copy in {store.root} " + ("checks out" if same else "differs")))
            except ArtifactError as exc:
                add(Check("store", False, str(exc)))
    return _finish(res)


def _finish(res: VerifyResult) -> VerifyResult:
    res.ok = bool(res.checks) and all(c.ok for c in res.checks)
    return res


def fetch_version(client: Any, job_id: str, ref: str | int, store: ArtifactStore) -> tuple[dict, list[dict], np.ndarray]:
    """(version record, checked lineage, parameters) of a ledger version, its parameters read from ``store``.

    The parameters must hash to the version's ``model_hash``; the version must be finalized (or
    version 0) with an intact lineage. Missing from the store: :class:`BadInput`; corrupted or not
    the ledger's: :class:`AuditError`.
    """
    rec = ask(client.get_version, job_id, str(ref))
    n, digest = int(rec["version"]), rec["model_hash"]
    if rec.get("status") not in ACCEPTED_STATUSES:
        raise AuditError(f"version {n} of job {job_id} is {rec.get('status')!r}, not finalized")
    chain = lineage(client, job_id, str(n))
    if not store.has(digest):
        raise BadInput(f"the artifact store {store.root} has no parameters for version {n} of job {job_id} "
                       f"(model hash {short(digest, 16)}); point --store at a store that has them")
    try:
        vec = store.get_model(digest)
    except ArtifactError as exc:
        raise AuditError(str(exc)) from None
    got = model_hash(vec)
    if got != digest:
        raise AuditError(f"the stored parameters hash to {short(got, 16)}, the ledger's version {n} to {short(digest, 16)}")
    return rec, chain, vec


def export_version(client: Any, job_id: str, ref: str | int, out: Path | str, store: ArtifactStore) -> VerifyResult:
    """Write version ``ref`` of ``job_id`` as a model file (``artifacts.export_model``) and verify the result.

    The parameters come from ``store`` and are checked against the ledger before anything is
    written (see :func:`fetch_version`); the file embeds the ledger's lineage. Returns the
    verification of the written file (raises :class:`AuditError` if even that fails).
    """
    rec, chain, vec = fetch_version(client, job_id, ref, store)
    arch, kwargs = model_architecture(ask(client.get_job, job_id))
    export_model(out, vec, job_id=job_id, version=int(rec["version"]), arch_id=arch, arch_kwargs=kwargs,
                 lineage=[{k: x[k] for k in ("version", "round", "status", "model_hash", "parent_hash", "parents",
                                             "aggregate_hash", "tx_id", "block")} for x in chain])
    res = verify(client, out, store)
    if not res.ok:
        raise AuditError(f"the exported file {out} does not verify: " + "; ".join(res.problems))
    return res
