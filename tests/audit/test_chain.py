"""The hash-chain audit on forged chains: intact passes, altered data and broken links are named."""
from __future__ import annotations

from fabric_protos.common import common_pb2
from typer.testing import CliRunner

from fedfabric.audit.chain import compare_peers, verify_chain
from fedfabric.cli import app
from fedfabric.ledger.blocks import data_hash, decode_block, header_hash

from tests.cli_ledger import serve


def make_chain(n: int) -> list[common_pb2.Block]:
    out, prev = [], b""
    for i in range(n):
        b = common_pb2.Block()
        b.header.number = i
        b.header.previous_hash = prev
        b.data.data.append(f"tx-{i}".encode())
        b.header.data_hash = data_hash(b)
        prev = header_hash(b.header)
        out.append(b)
    return out


class FakeQscc:
    def __init__(self, blocks: list[common_pb2.Block]) -> None:
        self.blocks = blocks

    def chain_info(self) -> dict:
        tip = self.blocks[-1]
        return {"height": len(self.blocks), "current_block_hash": header_hash(tip.header).hex(),
                "previous_block_hash": tip.header.previous_hash.hex()}

    def block(self, n: int) -> dict:
        return decode_block(self.blocks[n])


def test_intact_chain_passes():
    res = verify_chain(FakeQscc(make_chain(6)), "p")
    assert res.ok and res.checked == 6 and res.problems == []
    assert verify_chain(FakeQscc(make_chain(6)), "p", start=3).checked == 3


def test_altered_block_data_is_detected():
    chain = make_chain(5)
    chain[2].data.data[0] = b"forged"
    res = verify_chain(FakeQscc(chain), "p")
    assert not res.ok and any("block 2: its data does not hash" in p for p in res.problems)


def test_broken_link_is_detected():
    chain = make_chain(5)
    forged = common_pb2.Block()
    forged.CopyFrom(chain[2])
    forged.data.data[0] = b"other"
    forged.header.data_hash = data_hash(forged)   # internally consistent, but block 3 still points at the original
    chain[2] = forged
    res = verify_chain(FakeQscc(chain), "p")
    assert not res.ok and any("block 3: previous-hash" in p and "broken link" in p for p in res.problems)


def test_peers_disagreeing_are_reported():
    a, b = make_chain(4), make_chain(4)
    b[3].data.data[0] = b"fork"
    b[3].header.data_hash = data_hash(b[3])
    same = compare_peers({"p1": FakeQscc(a), "p2": FakeQscc(make_chain(5))})
    assert same["agree"] and same["common_height"] == 4
    diff = compare_peers({"p1": FakeQscc(a), "p2": FakeQscc(b)})
    assert not diff["agree"]


def test_cli_chain_exit_codes(monkeypatch):
    good = {f"peer0.org{i}": FakeQscc(make_chain(3)) for i in (1, 2, 3)}
    bad_chain = make_chain(3)
    bad_chain[1].data.data[0] = b"x"
    bad = {**good, "peer0.org2": FakeQscc(bad_chain)}

    runner = CliRunner()
    opened = serve(monkeypatch, lambda org, user: None, lambda peer_org: good[f"peer0.{peer_org}"])
    res = runner.invoke(app, ["audit", "chain", "--org", "org2"])
    assert res.exit_code == 0, res.output
    assert "intact" in res.output and "peer0.org3" in res.output
    assert {(o.org, o.user, o.peer_org) for o in opened} == {("org2", "Auditor", p) for p in ("org1", "org2", "org3")}
    serve(monkeypatch, lambda org, user: None, lambda peer_org: bad[f"peer0.{peer_org}"])
    res = runner.invoke(app, ["audit", "chain", "--json"])
    assert res.exit_code == 1 and '"ok": false' in res.output
