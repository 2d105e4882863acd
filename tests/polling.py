"""Polling helper shared by tests that wait for something another thread or process does."""
from __future__ import annotations

import time
from typing import Callable


def wait_until(cond: Callable[[], object], timeout: float = 5.0, poll: float = 0.01) -> bool:
    """True as soon as ``cond()`` is truthy; False if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True
