"""Debian's `prometheus` package: promtool for the alert rules' tests.

Without it those tests skip with a reason, unless ACKWATCH_REQUIRE_PROMETHEUS=1 or
CI=true, where they fail (`.ci/run` installs the package).
"""

from __future__ import annotations

import os
import shutil

import pytest

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
