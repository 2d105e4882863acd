"""Fixtures for offline ledger-client tests: a temp MSP identity and an in-process fake Gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from fedfabric.ledger import Gateway, Identity, Timeouts

from .certs import write_msp
from .fake_gateway import FakeGateway, serve


@pytest.fixture
def msp_dir(tmp_path: Path) -> Path:
    return write_msp(tmp_path / "msp")


@pytest.fixture
def identity(msp_dir: Path) -> Identity:
    return Identity.from_msp_dir(msp_id="Org1MSP", msp_dir=msp_dir)


@pytest.fixture
def fake() -> Iterator[FakeGateway]:
    servicer = FakeGateway()
    server, port = serve(servicer)
    servicer.port = port
    try:
        yield servicer
    finally:
        server.stop(grace=None)


@pytest.fixture
def gateway(fake: FakeGateway, identity: Identity) -> Iterator[Gateway]:
    gw = Gateway.connect(endpoint=f"127.0.0.1:{fake.port}", identity=identity,
                         default_timeouts=Timeouts(evaluate=5, endorse=5, submit=5, commit_status=5))
    with gw:
        yield gw
