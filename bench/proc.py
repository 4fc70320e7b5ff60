"""Run a command and measure it: wall time, CPU time, and the peak memory of its
whole process tree (the parent plus every worker it forks), sampled from /proc.

``ru_maxrss`` alone is not enough for a build that forks render workers: the
kernel reports the largest single process, not the sum. So a sampler thread
reads ``/proc/<pid>/status`` (VmRSS) of the command and all its descendants
every few milliseconds and keeps the largest sum. The sum counts pages shared
between a parent and its forked children once per process, so it errs high.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ..." — comm may hold spaces and parentheses
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _kib(pid: int, file: str, field: str) -> int:
    """The KiB figure of ``field`` in ``/proc/<pid>/<file>`` (0 once the process is gone)."""
    try:
        for line in (PROC / str(pid) / file).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_kib(root: int) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) over ``root`` and all its descendants, in KiB."""
    kids = _children_map()
    rss = pss = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        rss += _kib(pid, "status", "VmRSS:")
        pss += _kib(pid, "smaps_rollup", "Pss:")
        stack.extend(kids.get(pid, ()))
    return rss, pss


@dataclass
class Measured:
    wall: float  # seconds
    cpu: float  # user + system seconds of the command's whole tree
    peak_mib: float  # peak sum of RSS over the process tree
    peak_pss_mib: float  # peak sum of PSS (shared pages split between sharers)
    returncode: int
    stdout: str
    stderr: str


def run(
    cmd: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None, interval=0.005
) -> Measured:
    """Run ``cmd`` to completion, sampling its process tree's memory."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = peak_pss = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss
        while not done.is_set():
            rss, pss = tree_kib(proc.pid)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # the largest single process, as the kernel saw it: a floor for the tree's peak
    peak = max(peak, after.ru_maxrss if after.ru_maxrss > before.ru_maxrss else 0)
    return Measured(wall, cpu, peak / 1024, peak_pss / 1024, proc.returncode, out, err)


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
