"""Work that costs a known amount of CPU time, for tests of the budgets a run records."""
import time


def spend_cpu(seconds: float) -> None:
    """Busy-wait until this process has used ``seconds`` more CPU time (sleeping would cost none)."""
    until = time.process_time() + seconds
    while time.process_time() < until:
        pass
