"""The generated ValidatingAdmissionPolicy decides every PSA fixture exactly as PSA (and podsec) does.

Each ``<level>/v1.<N>/<pass|fail>/<stem>.yaml`` is run through ``podsec policy vap --level <level> --version
v1.<N>`` with a real CEL engine (tests/vap_cel.py): allowed exactly for the pass files. The message the API
server would report (the first failing validation's) is PSA's first failure, word for word, except where PSA
lists more than three sorted values, which Kubernetes 1.30 CEL cannot sort: there the same words and values.
"""

from __future__ import annotations

import re
from functools import cache

import pytest

from podsec.policy.pss import evaluate
from podsec.vap import policy_documents
from test_pss_fixtures import FOLDERS, fixtures, rel
from vap_cel import admit


@cache
def policy(level: str, version: str) -> dict:
    return policy_documents(level, version)[0]


def psa_message(level: str, version: str, doc: dict) -> str:
    """PSA's first failure as the VAP reports it (one validation per check)."""
    failure = evaluate(doc.get("metadata"), doc.get("spec"), level, version).failures[0]
    detail = f" ({failure.detail})" if failure.detail else ""
    return f'violates PodSecurity "{level}:{version}": {failure.reason}{detail}'


_QUOTED_LIST = re.compile(r'"[^"]*"(?:, "[^"]*")*')


def same_words_and_values(a: str, b: str) -> bool:
    """Equal once each quoted list is read as a set (the order and repeats CEL cannot fix)."""
    return _QUOTED_LIST.sub("Q", a) == _QUOTED_LIST.sub("Q", b) and set(re.findall(r'"[^"]*"', a)) == set(
        re.findall(r'"[^"]*"', b)
    )


@pytest.mark.parametrize(("level", "version"), FOLDERS, ids=[f"{lv}-{v}" for lv, v in FOLDERS])
def test_policy_decides_like_psa(level: str, version: str) -> None:
    problems = []
    for path, outcome, doc in fixtures()[(level, version)]:
        decision = admit(policy(level, version), doc)
        if decision.allowed != (outcome == "pass"):
            problems.append(f"{rel(path)}: expected {outcome}, policy said {decision.messages or 'allowed'}")
            continue
        if not decision.allowed:
            want = psa_message(level, version, doc)
            if decision.message != want and not (
                len(re.findall(r'"[^"]*"', want)) > 3 and same_words_and_values(decision.message, want)
            ):
                problems.append(f"{rel(path)}: message\n  got  {decision.message}\n  want {want}")
    assert not problems, "\n".join(problems)


def test_latest_is_the_newest_version() -> None:
    """``--version latest`` carries the v1.37 rules (messages say latest, as PSA's do)."""
    for level in ("baseline", "restricted"):
        for path, outcome, doc in fixtures()[(level, "v1.37")]:
            assert admit(policy(level, "latest"), doc).allowed == (outcome == "pass"), rel(path)
