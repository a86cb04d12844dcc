"""A stop asked for by a signal ends the process even when a thread is stuck
(`daemon.signals.StopDeadline`); the scenario on a hung database is
tests/cluster/test_node_faults.py."""

from __future__ import annotations

import threading

from structlog.testing import capture_logs

from ackwatch.daemon.signals import EXIT_STOP_OVERDUE, StopDeadline


def test_a_stop_that_overruns_its_budget_ends_the_process_once_saying_so():
    exited: list[int] = []
    done = threading.Event()

    def exit_(code: int) -> None:
        exited.append(code)
        done.set()

    deadline = StopDeadline(seconds=0.01, exit=exit_)
    with capture_logs() as logs:
        deadline.arm()
        deadline.arm()  # a second SIGTERM counts from the first
        assert done.wait(10)
    assert exited == [EXIT_STOP_OVERDUE]
    (overdue,) = [e for e in logs if e["event"] == "stop_overdue"]
    assert overdue["log_level"] == "error" and overdue["seconds"] == 0.01


def test_a_stop_never_asked_for_never_ends_the_process():
    exited: list[int] = []
    StopDeadline(seconds=0.0, exit=exited.append)
    assert threading.Event().wait(0.05) is False and exited == []
