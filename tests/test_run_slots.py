"""`RunSlots`: at most N runs read and count at once; a slot comes back at the run's end or its deadline."""

from __future__ import annotations

import threading
import time

import pytest

from driftwatch.runtime.memory import RunSlots


def test_slots_are_bounded_and_a_waiter_gets_a_released_one() -> None:
    """The third acquire of two slots waits until one is released, then gets it."""
    slots = RunSlots(2)
    first, second = slots.acquire(1), slots.acquire(1)
    assert first is not None and second is not None and slots.busy == 2
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(slots.acquire(5)))
    waiter.start()
    time.sleep(0.2)
    assert got == [] and slots.busy == 2
    first.release()
    waiter.join(5)
    assert got and got[0] is not None and slots.busy == 2


def test_acquire_gives_up_at_its_timeout() -> None:
    """No slot free within the timeout: None, after about that long."""
    slots = RunSlots(1)
    assert slots.acquire(0) is not None
    began = time.monotonic()
    assert slots.acquire(0.3) is None
    assert 0.25 <= time.monotonic() - began < 2
    assert slots.acquire(-1) is None  # a deadline already past does not wait


def test_release_is_idempotent() -> None:
    """The run's end and its deadline may both release: the slot comes back once."""
    slots = RunSlots(1)
    slot = slots.acquire(0)
    assert slot is not None
    slot.release()
    slot.release()
    assert slots.busy == 0
    assert slots.acquire(0) is not None and slots.acquire(0) is None


def test_at_least_one_slot() -> None:
    """Zero slots would stall every run: refused."""
    with pytest.raises(ValueError, match="at least one"):
        RunSlots(0)
