"""Shared plumbing: ledger reads with clear errors, block look-ups, integer metrics made readable."""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping

from .errors import BadInput

# Keys of integer metrics carry their scale in their name (the ledger takes no floats).
SCALES = (("_milli", 1e-3), ("_micro", 1e-6), ("_nano", 1e-9))
ACCURACY_RE = re.compile(r"acc|f1|auc|precision|recall")
LOSS_RE = re.compile(r"loss")


def ask(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a client read; a refusal of the contract for bad input (4xx) becomes :class:`BadInput`."""
    from ..client import Rejected

    try:
        return fn(*args)
    except Rejected as exc:
        if exc.status is not None and 400 <= exc.status < 500:
            raise BadInput(exc.message) from None
        raise


def short(digest: str | None, n: int = 12) -> str:
    """The first ``n`` characters of a hash or id followed by ``…`` (``-`` for none), for tables."""
    return "-" if not digest else (digest[:n] + "…" if len(digest) > n else digest)


def block_finder(client: Any) -> Callable[[str], int | None]:
    """``tx_id -> block number`` (cached; ``None`` when this client cannot tell).

    Uses ``client.block_of_tx(tx_id)`` when the client has it, otherwise the channel's query
    system chaincode (qscc ``GetBlockByTxID``) through a :class:`FedFabricClient`'s gateway.
    """
    lookup: Callable[[str], int | None] | None = getattr(client, "block_of_tx", None)
    if not callable(lookup):
        network = getattr(getattr(client, "contract", None), "network", None)
        if network is not None and hasattr(network, "qscc"):
            qscc = network.qscc()

            def lookup(tx_id: str) -> int | None:
                return int(qscc.block_by_tx_id(tx_id)["number"])
        else:
            lookup = None
    cache: dict[str, int | None] = {}

    def find(tx_id: str) -> int | None:
        if not tx_id or lookup is None:
            return None
        if tx_id not in cache:
            try:
                cache[tx_id] = lookup(tx_id)
            except Exception:  # noqa: BLE001 - a block number is a convenience, never a verdict
                cache[tx_id] = None
        return cache[tx_id]

    return find


def scale_metric(key: str, value: Any) -> tuple[str, float | None]:
    """``("val_accuracy_milli", 951)`` -> ``("val_accuracy", 0.951)``; keys without a scale stay as they are.

    A negative loss is the nodes' marker for a non-finite loss and reads as ``None``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return key, None
    name, factor = key, 1.0
    for suffix, f in SCALES:
        if key.endswith(suffix):
            name, factor = key[: -len(suffix)], f
            break
    if LOSS_RE.search(name) and value < 0:
        return name, None
    return name, value * factor


def combine_metrics(per_org: Mapping[str, Mapping[str, Any]], weights: Mapping[str, int] | None = None) -> dict:
    """Per metric (scaled): each org's value, the plain mean and the ``weights``-weighted mean across orgs."""
    out: dict[str, dict] = {}
    for msp in sorted(per_org):
        for key, raw in sorted((per_org[msp] or {}).items()):
            name, val = scale_metric(key, raw)
            m = out.setdefault(name, {"key": key, "per_org": {}})
            m["per_org"][msp] = val
    for m in out.values():
        vals = {o: v for o, v in m["per_org"].items() if v is not None}
        m["mean"] = sum(vals.values()) / len(vals) if vals else None
        w = {o: int((weights or {}).get(o, 0)) for o in vals}
        total = sum(x for x in w.values() if x > 0)
        m["weighted"] = (sum(vals[o] * w[o] for o in vals if w[o] > 0) / total) if total else m["mean"]
    return out


def metric_kind(name: str) -> str:
    """``accuracy`` (accuracy, F1, AUC, …), ``loss`` or ``other`` — which plot a metric belongs to."""
    if LOSS_RE.search(name):
        return "loss"
    if ACCURACY_RE.search(name):
        return "accuracy"
    return "other"


def resolve_org(client: Any, name: str) -> str:
    """The MSP id for ``Org2MSP``, ``org2`` (the org's name) or ``Org2``; :class:`BadInput` if no member matches."""
    orgs = ask(client.list_orgs)
    msps = [o["msp_id"] for o in orgs]
    if name in msps:
        return name
    low = name.lower()
    for o in orgs:
        if low in (str(o.get("name", "")).lower(), o["msp_id"].lower(), o["msp_id"].lower().removesuffix("msp")):
            return o["msp_id"]
    raise BadInput(f"no member org {name!r} on the ledger; members: {', '.join(msps) or '(none)'}")


def versions_by_number(versions: Iterable[dict]) -> dict[int, dict]:
    """Version records keyed by their number."""
    return {int(v["version"]): v for v in versions}
