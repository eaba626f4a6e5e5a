"""What the processes of one test run build once and share: pytest-xdist's workers each migrated
the same databases and collected the same static files (seconds of CPU each, three times a run).

The first process to ask (pytest's controller: tests/conftest.py asks before it starts the workers)
makes the run's directory and names it in the environment, which the workers inherit; a process
outside pytest (bench/) makes one of its own. That process removes the directory when it exits,
after the hooks given to `at_end` (the PostgreSQL template is dropped by one).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

RUN_DIRECTORY = "TRADING_TEST_RUN_DIR"
_at_end: list[Callable[[Path], None]] = []


def run_directory() -> Path:
    """The directory this run's processes share (made on first use)."""
    path = os.environ.get(RUN_DIRECTORY)
    if path is None:
        path = tempfile.mkdtemp(prefix="trading-run-")
        os.chmod(path, 0o755)  # nginx's workers (another user) serve the static files in it
        os.environ[RUN_DIRECTORY] = path
        atexit.register(_end, Path(path))
    return Path(path)


def at_end(hook: Callable[[Path], None]) -> None:
    """`hook(directory)` when the process that made the run's directory exits, before it is removed."""
    _at_end.append(hook)


def _end(directory: Path) -> None:
    for hook in _at_end:
        hook(directory)
    shutil.rmtree(directory, ignore_errors=True)


def built_once(name: str, build: Callable[[Path], None]) -> Path:
    """`directory/name`, built by `build(path)` in the first process of the run to ask for it; the
    others wait for it under a lock. A build that fails leaves nothing, and the next asker tries again."""
    directory = run_directory()
    path = directory / name
    with open(directory / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = directory / f"{name}.done"
        if not done.exists():
            build(path)
            done.touch()
    return path
