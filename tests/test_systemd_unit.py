"""The shipped systemd unit: the directives ackwatch relies on, and its hardening score."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "ackwatch.service"
MAX_EXPOSURE = 2.0


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> directive -> values in order (systemd allows repeats, unlike INI)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"directive outside a section: {line!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def text() -> str:
    return UNIT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def service(text: str) -> dict[str, list[str]]:
    return parse_unit(text)["Service"]


def one(service: dict[str, list[str]], key: str) -> str:
    assert key in service, f"{key}= missing"
    return service[key][-1]


def test_type_notify_with_watchdog_only_main_process_notifies(service):
    assert one(service, "Type") == "notify"
    assert one(service, "NotifyAccess") == "main"
    assert re.fullmatch(r"\d+(s|min)?", one(service, "WatchdogSec"))


def test_config_error_exit_status_is_not_restarted(service):
    assert one(service, "Restart") == "on-failure"
    assert "78" in one(service, "RestartPreventExitStatus").split()
    assert one(service, "RestartSec")
    assert one(service, "TimeoutStopSec")


def test_exec_start_runs_the_daemon_with_the_config_in_the_configuration_directory(service):
    argv = one(service, "ExecStart").split()
    assert argv[0].startswith("/") and argv[0].endswith("/ackwatch")
    assert argv[1:3] == ["run", "-c"]
    assert argv[3] == "/etc/ackwatch/config.yaml"


def test_reload_sends_sighup_to_the_main_process(service):
    assert one(service, "ExecReload").split()[-2:] == ["-HUP", "$MAINPID"]


def test_state_directory_with_a_dynamic_user(service):
    assert one(service, "DynamicUser") == "yes"
    assert one(service, "StateDirectory") == "ackwatch"
    assert one(service, "StateDirectoryMode") == "0700"


def test_the_admins_mode_of_etc_ackwatch_is_never_reset(service):
    # systemd.exec(5): the innermost ConfigurationDirectory= gets ConfigurationDirectoryMode=
    # (default 0755) at every start, even when it exists; so neither may be set.
    assert "ConfigurationDirectory" not in service
    assert "ConfigurationDirectoryMode" not in service
    assert "CONFIGURATION_DIRECTORY" not in " ".join(service["ExecStart"])


def test_load_credential_is_shown_for_passwords(text):
    assert re.search(r"^#\s*LoadCredential=anna\.pass:/etc/ackwatch/anna\.pass$", text, re.M)
    assert "credential: anna.pass" in text


def test_network_and_process_needs_are_kept(service):
    families = set(one(service, "RestrictAddressFamilies").split())
    assert families == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert service.get("PrivateNetwork", ["no"])[-1] != "yes"  # IMAP/SMTP outbound
    filters = " ".join(service.get("SystemCallFilter", []))
    assert "@system-service" in filters  # includes @process: oauth2_token_command helpers
    assert "~@process" not in filters.replace(" ", "")
    assert one(service, "ProtectSystem") == "strict"  # writable: StateDirectory only
    assert "ReadWritePaths" not in service


def test_memory_and_tasks_are_capped_above_the_bench_figures(service):
    """MemoryMax= and TasksMax= leave room above what the bench measured (issue 18)."""
    results = json.loads((UNIT.parent.parent / "bench" / "results.json").read_text())
    raw = {r["target"].split()[0]: r["raw"] for r in results["results"]}
    peak_mb = max(raw["6"][life]["peak_rss_mb"] for life in ("first", "config", "steady")
                  if life in raw["6"])  # fmt: skip
    memory = one(service, "MemoryMax")
    assert memory.endswith("M"), memory
    assert int(memory[:-1]) >= 3 * peak_mb
    tasks = int(one(service, "TasksMax"))
    mailboxes, threads = raw["3"]["mailboxes"], raw["3"]["threads"]
    assert tasks >= 2 * threads + 32  # a thread per mailbox, one more each while stopping
    assert tasks >= 2 * mailboxes + 32


def test_every_directive_group_is_commented(text):
    in_service = False
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
        if any(ln.startswith("[") for ln in lines):
            in_service = "[Service]" in lines
            lines = [ln for ln in lines if not ln.startswith("[")]
        directives = [ln for ln in lines if not ln.startswith("#")]
        if in_service and directives:
            assert any(ln.startswith("#") for ln in lines), f"uncommented group: {directives}"


def _analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return exe


def test_security_exposure_is_at_most_2_0():
    exe = _analyze()
    proc = subprocess.run(
        [exe, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    if match is None:
        pytest.skip(f"systemd-analyze security --offline unsupported here: {proc.stderr[:200]}")
    assert float(match.group(1)) <= MAX_EXPOSURE, proc.stdout


def test_unit_verifies_cleanly(tmp_path):
    exe = _analyze()
    # verify insists that ExecStart exists; point it at an executable that does.
    unit = tmp_path / "ackwatch.service"
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace("/usr/local/bin/ackwatch", sys.executable),
        encoding="utf-8",
    )
    proc = subprocess.run(
        [exe, "verify", "--man=no", str(unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    problems = [ln for ln in proc.stderr.splitlines() if "ackwatch.service" in ln]
    assert proc.returncode == 0 and not problems, proc.stderr
