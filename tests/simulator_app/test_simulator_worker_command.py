"""`manage.py simulator_worker` needs a channel layer it can share with the servers."""

from __future__ import annotations

import subprocess
import sys

from tests.support.liveserver import ROOT, base_env


def test_the_worker_command_refuses_to_run_on_the_in_memory_channel_layer() -> None:
    env = base_env()
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "simulator_worker"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "simulator_worker needs REDIS_URL" in result.stderr
