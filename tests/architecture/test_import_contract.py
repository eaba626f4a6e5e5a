"""The architecture contract (.importlinter) holds: floors only point down, and only the server
process module talks to Twisted (through its public reactor API)."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / ".importlinter"


def test_every_contract_of_the_architecture_is_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--config", str(CONTRACT), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def test_the_contract_excuses_only_the_server_process_module() -> None:
    contract = configparser.ConfigParser()
    contract.read(CONTRACT)

    excused = {
        name: section["ignore_imports"].split() for name, section in contract.items() if "ignore_imports" in section
    }
    assert contract.sections(), "the contract file was not read"
    assert excused == {
        "importlinter:contract:server-libraries": [
            "sessions_app.realtime.process",
            "->",
            "twisted",
        ]
    }
