"""The alert rules ops drop into Prometheus (contrib/prometheus/): valid, and each alert
fires when it should and stays quiet when it should not (`ackwatch-rules.test.yml`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from tests.servers.prometheus import promtool

RULES_DIR = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"
RULES = RULES_DIR / "ackwatch-rules.yml"
RULE_TESTS = RULES_DIR / "ackwatch-rules.test.yml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=RULES_DIR, capture_output=True, text=True, timeout=60)


def alert_names() -> set[str]:
    return {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]}


def test_alert_rules_pass_promtool_check():
    result = run(promtool(), "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout


def test_each_alert_fires_and_stays_quiet_in_promtools_rule_tests():
    result = run(promtool(), "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case():
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing == alert_names()
    assert quiet == alert_names()


def test_the_required_alerts_are_there():
    assert {
        "AckwatchNotScraped", "AckwatchAbsent", "AckwatchMailboxDown",
        "AckwatchMailboxNotSyncing", "AckwatchClientMailOverdue", "AckwatchNudgesFailing",
        "AckwatchStateDatabaseUnreachable",
    } <= alert_names()
