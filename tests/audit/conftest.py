import pytest

from .ledger import build_world


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A ledger with history for tests that only read it."""
    return build_world(tmp_path_factory.mktemp("audit-shared"))


@pytest.fixture
def world(tmp_path):
    """A fresh copy of that ledger for tests that tamper with it."""
    return build_world(tmp_path)
