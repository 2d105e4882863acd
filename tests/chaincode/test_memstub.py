import hashlib

import pytest

from fabshim.memstub import MemoryStub

from . import identities as ids

WHO = ids.trainer("Org1MSP")


def test_writes_commit_only_on_success_and_no_read_your_writes():
    s = MemoryStub()
    with s.transaction(WHO, ["f"], 10):
        s.put_state("a", b"1")
        assert s.get_state("a") is None  # committed state only
    with pytest.raises(RuntimeError):
        with s.transaction(WHO, ["f"], 11):
            s.put_state("b", b"2")
            s.del_state("a")
            raise RuntimeError("boom")
    assert s.state == {"a": b"1"}


def test_tx_facts():
    s = MemoryStub(channel_id="fl")
    with s.transaction(WHO, ["fn", "x", "y"], 42, {"k": b"v"}, tx_id="t1"):
        assert s.get_function_and_parameters() == ("fn", ["x", "y"])
        assert s.get_args() == [b"fn", b"x", b"y"]
        assert s.get_tx_timestamp().seconds == 42
        assert s.get_transient() == {"k": b"v"} and s.tx_id == "t1" and s.channel_id == "fl"
        assert s.get_creator() == WHO


def test_composite_keys_ranges_and_pagination():
    s = MemoryStub()
    k = s.create_composite_key("job", ["a", "1"])
    assert k == "\x00job\x00a\x001\x00"
    assert s.split_composite_key(k) == ("job", ["a", "1"])
    with s.transaction(WHO, ["f"]):
        for i in range(5):
            s.put_state(s.create_composite_key("job", [f"j{i}"]), str(i).encode())
        s.put_state(s.create_composite_key("org", ["x"]), b"o")
        s.put_state("plain", b"p")
    with s.transaction(WHO, ["f"]):
        with s.get_state_by_partial_composite_key("job", []) as it:
            assert [v for _, v in it] == [b"0", b"1", b"2", b"3", b"4"]
        assert [v for _, v in s.get_state_by_range("", "")] == [b"p"]  # composite keys stay out, as on a peer
        page, md = s.get_state_by_partial_composite_key_with_pagination("job", [], 2, "")
        assert [v for _, v in page] == [b"0", b"1"] and md.fetched_records_count == 2
        page2, md2 = s.get_state_by_partial_composite_key_with_pagination("job", [], 10, md.bookmark)
        assert [v for _, v in page2] == [b"2", b"3", b"4"] and md2.bookmark == ""


def test_history_private_data_events_and_validation_parameters():
    s = MemoryStub()
    with s.transaction(WHO, ["f"], 1, tx_id="t1"):
        s.put_state("k", b"1")
        s.put_private_data("c", "p", b"secret")
        s.set_event("E", b"{}")
        s.set_state_validation_parameter("k", b"ep")
    with s.transaction(WHO, ["f"], 2, tx_id="t2"):
        assert s.get_private_data_hash("c", "p") == hashlib.sha256(b"secret").digest()
        assert s.get_state_validation_parameter("k") == b"ep"
        s.del_state("k")
        s.purge_private_data("c", "p")
    with s.transaction(WHO, ["f"], 3):
        hist = list(s.get_history_for_key("k"))
        assert [(m.tx_id, m.is_delete, m.value) for m in hist] == [("t2", True, b""), ("t1", False, b"1")]
        assert s.get_private_data("c", "p") is None and s.get_private_data_hash("c", "p") is None
    assert s.purged == [("c", "p")]
    assert [(e.tx_id, e.name) for e in s.events] == [("t1", "E")]


def test_only_last_event_of_a_tx_is_kept_and_outside_tx_is_an_error():
    s = MemoryStub()
    with s.transaction(WHO, ["f"]):
        s.set_event("A", b"1")
        s.set_event("B", b"2")
    assert [e.name for e in s.events] == ["B"]
    with pytest.raises(RuntimeError):
        s.get_state("x")


def test_run_commits_only_successful_invocations():
    from fabshim.contract import Chaincode, ChaincodeError, Contract, transaction

    class C(Contract):
        name = "c"

        @transaction
        def put(self, ctx, k: str, fail: bool) -> str:
            ctx.stub.put_state(k, b"v")
            if fail:
                raise ChaincodeError("no", 409)
            return k

    s, cc = MemoryStub(), Chaincode([C()])
    assert s.run(cc, WHO, ["put", "a", "false"]).payload == b"a"
    r = s.run(cc, WHO, ["put", "b", "true"])
    assert (r.status, r.message) == (409, "no") and s.state == {"a": b"v"}
