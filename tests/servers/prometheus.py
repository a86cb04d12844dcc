"""Debian's `prometheus` package: promtool for the alert rules' tests, and a real
Prometheus for the dashboard's queries.

Without it those tests skip with a reason, unless ACKWATCH_REQUIRE_PROMETHEUS=1 or
CI=true, where they fail (`.ci/run` installs the package).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from tests.servers.imapserver import free_port

REQUIRE_ENV = "ACKWATCH_REQUIRE_PROMETHEUS"


def prometheus_required() -> bool:
    return any(
        os.environ.get(name, "") not in ("", "0", "false", "no") for name in (REQUIRE_ENV, "CI")
    )


def promtool() -> str:
    """promtool's path; skips the test (fails it in CI) when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        msg = "promtool is not installed (apt-get install prometheus)"
        if prometheus_required():
            pytest.fail(f"{REQUIRE_ENV} or CI is set but {msg}")
        pytest.skip(msg)
    return path


class PrometheusServer:
    """A real Prometheus (Debian's binary) on loopback scraping one target every second,
    its data in a temporary directory; `query` runs an instant PromQL query."""

    def __init__(self, workdir: Path, target: str, job: str = "ackwatch") -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            promtool()  # skips, or fails in CI, with the package's name
            pytest.skip("prometheus is not installed (apt-get install prometheus)")
        self.binary = str(binary)
        self.workdir = workdir
        self.port = free_port()
        self.config = workdir / "prometheus.yml"
        self.config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"scrape_configs:\n  - job_name: {job}\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrometheusServer:
        log = (self.workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={self.config}",
             f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: see {self.workdir / 'prometheus.log'}")
            try:
                with urllib.request.urlopen(self._url("/-/ready"), timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready within 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def query(self, expr: str) -> list[dict]:
        """The instant vector (or scalar, as one sample) ``expr`` evaluates to now."""
        url = self._url("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        if body["status"] != "success":
            raise AssertionError(f"{expr}: {body}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]
