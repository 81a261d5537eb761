"""The layers of podsec (pyproject.toml's import-linter contract) hold, and the check would see a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(REPO / "pyproject.toml")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_layers_hold() -> None:
    r = lint(REPO / "src")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Contracts: 1 kept, 0 broken." in r.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "podsec", src / "podsec", ignore=shutil.ignore_patterns("__pycache__"))
    resolve = src / "podsec" / "resolve.py"
    resolve.write_text(resolve.read_text() + "\n\ndef _upward() -> None:\n    import podsec.report.explain_report  # noqa\n")
    r = lint(src)
    assert r.returncode == 1
    assert "podsec.resolve is not allowed to import podsec.report" in r.stdout
    assert "podsec.resolve -> podsec.report.explain_report" in r.stdout


def test_a_new_module_must_be_placed_in_a_layer(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "podsec", src / "podsec", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "podsec" / "stray.py").write_text('"""Not in any layer."""\n')
    r = lint(src)
    assert r.returncode != 0
    assert "podsec.stray" in r.stdout
