"""The demo contract over a fake peer, started via run_from_env in a subprocess."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fabric_protos.peer import proposal_response_pb2

from .fakepeer import FakePeer
from .test_handler import M

DEMO = Path(__file__).resolve().parents[1] / "chaincode_demo" / "demo_cc.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_run_from_env_and_sigterm():
    port = _free_port()
    env = dict(os.environ, CHAINCODE_ID="demo:1", CHAINCODE_SERVER_ADDRESS=f"127.0.0.1:{port}")
    proc = subprocess.Popen([sys.executable, str(DEMO)], env=env, stderr=subprocess.PIPE)
    try:
        p = None
        for _ in range(100):
            p = FakePeer(f"127.0.0.1:{port}", {})
            time.sleep(0.1)
            if p.register is not None:
                break
            p.close()
        assert p is not None and p.register is not None
        p.send_tx("a", [b"put", b"k", b"v"])
        p.send_tx("b", [b"fail", b"nope"])
        p.send_tx("c", [b"set_key_policy", b"k", b"0a0b"])
        got = p.wait(["a", "b", "c"])
        assert proposal_response_pb2.Response.FromString(got["a"].payload).status == 200
        rb = proposal_response_pb2.Response.FromString(got["b"].payload)
        assert (rb.status, rb.message) == (500, "nope")
        assert p.state[("meta", "k")] == b"\x0a\x0b"
        p.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
