"""Helpers shared by test modules: functions, constants and fixtures, no tests.

A test module imports what it needs from here, never from another test module; a fixture
defined here is declared where it is used by importing it into a conftest.py (or the test
module). Asserts in these modules are rewritten by pytest like those of test modules.
"""

import pytest

pytest.register_assert_rewrite(
    "tests.support.crash",
    "tests.support.daemon",
    "tests.support.flood",
    "tests.support.inprocess",
    "tests.support.random_mail",
    "tests.support.report_state",
    "tests.support.run_once",
    "tests.support.storing",
    "tests.support.waiting",
    "tests.support.watcher_events",
)
