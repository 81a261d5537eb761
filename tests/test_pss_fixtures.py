"""Upstream PSA conformance fixtures (shared/psa-testdata, README "Expected outcome rule").

Every ``<level>/v1.<N>/<pass|fail>/<stem>.yaml`` is evaluated at ``<level>:v1.<N>``: pass files must be
allowed; fail files denied with the stem's expected substring in the message and never
"unknown forbidden reason". The v1.37 files must behave identically at ``latest``.
"""

from __future__ import annotations

import csv
import os
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from podsec.policy.pss import PSSResult, evaluate

TESTDATA = Path(
    os.environ.get("PODSEC_PSA_TESTDATA", Path(__file__).resolve().parents[2] / "shared" / "psa-testdata")
)
EXPECTED_FILES = 4537
LATEST_FOLDER = "v1.37"
FOLDERS = [(level, f"v1.{n}") for level in ("baseline", "restricted") for n in range(38)]


@cache
def expected_substrings() -> dict[str, str]:
    with open(TESTDATA / "expected-substrings.tsv", newline="") as fh:
        return {row["stem_prefix"]: row["expected_substring"] for row in csv.DictReader(fh, delimiter="\t")}


@cache
def fixtures() -> dict[tuple[str, str], list[tuple[Path, str, dict]]]:
    """Parsed fixtures grouped by (level, version): (path, outcome, document). Every test reads them through
    here, so none passes on a missing or partial fixtures directory."""
    assert TESTDATA.is_dir(), f"PSA fixtures not found at {TESTDATA} (set PODSEC_PSA_TESTDATA)"
    out: dict[tuple[str, str], list[tuple[Path, str, dict]]] = {}
    for path in sorted(TESTDATA.glob("*/v1.*/*/*.yaml")):
        level, version, outcome = path.parts[-4], path.parts[-3], path.parts[-2]
        with open(path) as fh:
            doc = yaml.load(fh, Loader=yaml.CSafeLoader)
        out.setdefault((level, version), []).append((path, outcome, doc))
    found = sum(len(files) for files in out.values())
    assert found == EXPECTED_FILES, f"{found} PSA fixtures at {TESTDATA}, expected {EXPECTED_FILES}"
    return out


def run(doc: dict, level: str, version: str) -> PSSResult:
    return evaluate(doc.get("metadata"), doc.get("spec"), level, version)


def rel(path: Path) -> str:
    return str(path.relative_to(TESTDATA))


def problem(path: Path, outcome: str, result: PSSResult) -> str | None:
    """Why a fixture disagrees with the expected-outcome rule, or None."""
    if outcome == "pass":
        return None if result.allowed else f"{rel(path)}: expected allowed, got {result.message}"
    if result.allowed:
        return f"{rel(path)}: expected denied, got allowed"
    msg = result.message
    want = expected_substrings()[re.sub(r"\d+$", "", path.stem)]
    if want not in msg:
        return f"{rel(path)}: {want!r} not in {msg!r}"
    if "unknown forbidden reason" in msg:
        return f"{rel(path)}: unknown forbidden reason in {msg!r}"
    return None


def test_fixture_count() -> None:
    assert TESTDATA.is_dir(), f"PSA fixtures not found at {TESTDATA} (set PODSEC_PSA_TESTDATA)"
    counts = {key: len(files) for key, files in fixtures().items()}
    assert sorted(counts) == sorted(FOLDERS), "missing or extra level/version folders"
    assert sum(counts.values()) == EXPECTED_FILES
    outcomes = [o for files in fixtures().values() for _, o, _ in files]
    assert outcomes.count("pass") == 433 + 618
    assert outcomes.count("fail") == 1122 + 2364


@pytest.mark.parametrize(("level", "version"), FOLDERS, ids=[f"{lv}-{v}" for lv, v in FOLDERS])
def test_fixture_folder(level: str, version: str) -> None:
    files = fixtures().get((level, version))
    assert files, f"no fixtures for {level}/{version}"
    problems = [p for path, outcome, doc in files if (p := problem(path, outcome, run(doc, level, version)))]
    assert not problems, f"{len(problems)} fixture(s) disagree:\n" + "\n".join(problems)


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_latest_equals_newest_folder(level: str) -> None:
    files = fixtures()[(level, LATEST_FOLDER)]
    diffs = []
    for path, _, doc in files:
        pinned, latest = run(doc, level, LATEST_FOLDER), run(doc, level, "latest")
        if (pinned.allowed, pinned.forbidden_detail()) != (latest.allowed, latest.forbidden_detail()):
            diffs.append(f"{rel(path)}: {pinned.forbidden_detail()!r} != {latest.forbidden_detail()!r}")
        if latest.message and not latest.message.startswith(f'violates PodSecurity "{level}:latest": '):
            diffs.append(f"{rel(path)}: bad latest message {latest.message!r}")
    assert not diffs, "\n".join(diffs)


def test_restricted_pass_is_baseline_allowed() -> None:
    bad = [
        rel(path)
        for (level, version), files in fixtures().items()
        if level == "restricted"
        for path, outcome, doc in files
        if outcome == "pass" and not run(doc, "baseline", version).allowed
    ]
    assert not bad, "restricted pass fixtures denied at baseline:\n" + "\n".join(bad)


def test_privileged_allows_everything() -> None:
    bad = []
    for (_, version), files in fixtures().items():
        for path, _, doc in files:
            for v in (version, "latest"):
                r = run(doc, "privileged", v)
                if not r.allowed or r.failures or r.message:
                    bad.append(f"{rel(path)} at privileged:{v}")
    assert not bad, "\n".join(bad)


def test_every_test_here_fails_without_the_fixtures(tmp_path: Path) -> None:
    """A missing fixtures directory is a failure of every test above, never a quiet pass."""
    import subprocess
    import sys

    env = {**os.environ, "PODSEC_PSA_TESTDATA": str(tmp_path / "missing")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                        "-k", "not without_the_fixtures"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1, r.stdout
    summary = r.stdout.strip().splitlines()[-1]
    assert " failed" in summary and " passed" not in summary, summary
