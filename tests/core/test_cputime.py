import subprocess
import sys
import time

from molssl.core.cputime import cpu_seconds


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_counts_this_process_but_not_sleep():
    before = cpu_seconds()
    time.sleep(0.3)
    slept = cpu_seconds() - before
    _spin(0.3)
    spun = cpu_seconds() - before - slept
    assert slept < 0.15 and spun >= 0.25


def test_counts_finished_child_processes():
    before = cpu_seconds()
    subprocess.run([sys.executable, "-c", "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass"],
                   check=True)
    assert cpu_seconds() - before >= 0.35
