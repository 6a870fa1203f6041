"""Combining change signals (announcing commits is the registry adapter's: its contract)."""

from __future__ import annotations

import asyncio

import pytest

from lastgood.adapters.wakeups import AnySignal
from lastgood.serving.change_signals import ManualSignal


class Failing:
    async def wait(self, *, timeout_s: float, generation: int | None) -> bool:
        raise RuntimeError("the poll is broken")

    async def aclose(self) -> None:
        return None


def test_any_signal_wakes_on_the_first_member_that_does() -> None:
    async def go() -> tuple[bool, bool]:
        quiet, loud = ManualSignal(), ManualSignal()
        either = AnySignal(quiet, loud)
        loud.notify()
        woke = await either.wait(timeout_s=30, generation=None)
        return woke, await either.wait(timeout_s=0.01, generation=None)

    assert asyncio.run(go()) == (True, False)


def test_a_failing_member_leaves_the_others_in_charge_and_all_failing_is_an_error() -> None:
    async def go() -> bool:
        manual = ManualSignal()
        asyncio.get_running_loop().call_later(0.01, manual.notify)
        return await AnySignal(Failing(), manual).wait(timeout_s=30, generation=None)

    assert asyncio.run(go()) is True
    with pytest.raises(RuntimeError, match="broken"):
        asyncio.run(AnySignal(Failing(), Failing()).wait(timeout_s=30, generation=None))
    with pytest.raises(ValueError, match="at least one"):
        AnySignal()
