import sys

import pytest

from molssl.core.memory import MemoryGuard, keep_freed_memory, resident_bytes


class FakeProcess:
    """Resident size under the test's control; a trim shrinks it to ``after_trim``."""

    def __init__(self, size: int, after_trim: int) -> None:
        self.size, self.after_trim, self.released = size, after_trim, 0

    def resident(self) -> int:
        return self.size

    def release(self) -> None:
        self.released += 1
        self.size = self.after_trim


def test_guard_trims_only_past_the_allowance_and_rebases_on_the_step_after_a_trim():
    process = FakeProcess(size=1000, after_trim=400)
    guard = MemoryGuard(allowance=500, resident=process.resident, release=process.release)
    assert guard.after_step() is False and guard.baseline == 1000  # the first step sets the baseline
    process.size = 1500
    assert guard.after_step() is False and process.released == 0  # grown by exactly the allowance
    process.size = 1501
    assert guard.after_step() is True and process.released == 1 and guard.trims == 1
    process.size = 1100  # the next step has its working set back: that is the new baseline, not the trimmed 400
    assert guard.after_step() is False and guard.baseline == 1100
    process.size = 1600
    assert guard.after_step() is False and process.released == 1
    process.size = 1601
    assert guard.after_step() is True and process.released == 2


def test_guard_without_a_resident_size_never_trims():
    released = []
    guard = MemoryGuard(allowance=0, resident=lambda: None, release=lambda: released.append(1))
    assert not any(guard.after_step() for _ in range(3)) and not released


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc only")
def test_allocator_settings_are_accepted_and_the_resident_size_is_read():
    assert resident_bytes() > 10 * 2**20  # a Python interpreter running pytest
    import ctypes.util
    if "musl" in (ctypes.util.find_library("c") or ""):
        pytest.skip("not glibc")
    assert keep_freed_memory() is True
