"""CPU time actually used, for the "CPU hours" beside every score.

Wall time x threads overstates it when a run shares the cores or is paused, and misses worker processes
(featurization) and subprocesses (chemprop); the operating system's own count has neither problem.
"""
from __future__ import annotations

import resource


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads) and of its finished child processes."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total
