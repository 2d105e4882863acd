"""The channel's hash chain, checked block by block, and the same chain seen by every org's peer.

Each block header carries the hash of the previous header and of its own data; a block whose data
was changed, or a chain with a block swapped or dropped, breaks one of those links. Peers of
different orgs keep their own copies of the ledger: they must agree on the hash of every block.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


@dataclass
class ChainCheck:
    """Result of walking blocks ``start .. height-1`` of one peer's ledger."""

    peer: str
    height: int
    start: int
    checked: int = 0
    tip_hash: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.checked == self.height - self.start

    def to_dict(self) -> dict:
        return {"peer": self.peer, "height": self.height, "start": self.start, "checked": self.checked,
                "tip_hash": self.tip_hash, "ok": self.ok, "problems": list(self.problems)}


def verify_chain(qscc: Any, peer: str = "", start: int = 0, end: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> ChainCheck:
    """Walk blocks through qscc: every data hash matches, every block links to the one before, the tip
    matches the peer's chain info. Stops collecting after 20 problems."""
    info = qscc.chain_info()
    height = info["height"] if end is None else min(int(end), info["height"])
    start = max(0, int(start))
    res = ChainCheck(peer=peer, height=height, start=start)
    prev_hash = None
    if start > 0:
        prev_hash = qscc.block(start - 1)["header_hash"]
    for n in range(start, height):
        b = qscc.block(n)
        if b["number"] != n:
            res.problems.append(f"block {n}: the peer returned block {b['number']}")
        if not b["data_hash_ok"]:
            res.problems.append(f"block {n}: its data does not hash to the header's data hash (altered content)")
        if prev_hash is not None and b["previous_hash"] != prev_hash:
            res.problems.append(f"block {n}: previous-hash {b['previous_hash'][:16]}… does not match block "
                                f"{n - 1}'s header hash {prev_hash[:16]}… (broken link)")
        prev_hash = b["header_hash"]
        res.checked += 1
        if progress:
            progress(res.checked, height - start)
        if len(res.problems) >= 20:
            break
    res.tip_hash = prev_hash or ""
    if end is None and prev_hash is not None and height == info["height"] and prev_hash != info["current_block_hash"]:
        res.problems.append(f"tip: chain info's current hash {info['current_block_hash'][:16]}… is not the hash of "
                            f"block {height - 1} ({prev_hash[:16]}…)")
    return res


def compare_peers(qsccs: Mapping[str, Any]) -> dict:
    """Every peer's height and tip; whether all agree on the hash of the highest block they all have."""
    infos = {name: q.chain_info() for name, q in sorted(qsccs.items())}
    common = min(i["height"] for i in infos.values())
    hashes = {name: q.block(common - 1)["header_hash"] for name, q in sorted(qsccs.items())}
    agree = len(set(hashes.values())) == 1
    return {"common_height": common, "agree": agree, "hash_at_common_height": hashes,
            "peers": {n: {"height": i["height"], "current_block_hash": i["current_block_hash"]}
                      for n, i in infos.items()}}
