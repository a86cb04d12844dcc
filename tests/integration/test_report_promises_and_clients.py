"""`ackwatch report` as a subprocess over a real state database: the promises (made, kept,
moved, broken, open) are in the HTML page and the CSV summary too, and every format names
the clients below the target however few mails they sent.

The week is the one of `test_report_cli` (Mon 11 - Mon 18 Nov 2024, Europe/Warsaw):
Sklep Kwiatowy sent two mails and one was acknowledged late (50%); Acme sent one that
was never acknowledged (0%); Globex and gmail.com were answered in time.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from tests.integration.test_report_cli import ITEMS, WEEK, at
from tests.support.report_state import ANNA, PIOTR, write_config
from tests.support.run_once import ackwatch

from ackwatch.store.records import NewPromise
from ackwatch.store.sqlite import SqliteStore as Store

pytestmark = pytest.mark.integration


def promise(n: int, item_key: str, account: str, client: str, address: str) -> NewPromise:
    return NewPromise(
        source_key=f"<p{n}@agency.example>", thread=item_key, item_key=item_key,
        account=account, client=client, client_address=address, subject="Quote",
        made_at=at(12 + n % 3, 11), promised=at(19, 12), remind_at=None,
        sentence="I will send it by Tuesday noon.",
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cfg = write_config(tmp_path)
    store = Store.open(tmp_path / "state")
    try:
        now = at(18, 12)
        store.sync_items(ITEMS, now=now, initial_keys=set())
        made = [
            (promise(1, "<c2@example>", ANNA, "Sklep Kwiatowy", "ola@sklep-kwiatowy.example"),
             "kept"),
            (promise(2, "<c3@example>", ANNA, "Sklep Kwiatowy", "ola@sklep-kwiatowy.example"),
             "moved"),
            (promise(3, "<c1@example>", PIOTR, "Globex", "grace@globex.example"), "broken"),
            (promise(4, "<c5@example>", PIOTR, None, "lead@gmail.com"), "open"),  # type: ignore[arg-type]
        ]
        for p, state in made:
            pid = store.record_promise_read(p.source_key, state="done", now=now, promise=p)
            assert pid is not None
            if state != "open":
                store.update_promises([(pid, state, None, now)])
    finally:
        store.close()
    return cfg


def report(config: Path, fmt: str) -> str:
    result = ackwatch("report", "-c", str(config), "--format", fmt, *WEEK)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_html_report_shows_the_promises_by_outcome(config):
    page = report(config, "html")
    section = page.split('<section id="promises">')[1].split("</section>")[0]
    assert "4 made: 1 kept, 1 moved, 1 broken, 1 open." in section
    assert "Sklep Kwiatowy" in section and "lead@gmail.com" in section


def test_the_csv_summary_has_demand_level_and_promises_per_client(config):
    rows = list(csv.DictReader(io.StringIO(report(config, "csv-summary"))))
    by = {(r["group"], r["name"]): r for r in rows}
    total = by[("total", "")]
    assert (total["client_emails"], total["service_level"], total["promises_made"]) == (
        "5", "0.6", "4")
    sklep = by[("client", "Sklep Kwiatowy")]
    assert [sklep[k] for k in ("client_emails", "service_level", "below_target",
                               "promises_made", "promises_kept", "promises_moved")] == [
        "2", "0.5", "yes", "2", "1", "1"]
    gmail = by[("client", "gmail.com")]
    assert (gmail["below_target"], gmail["promises_open"]) == ("no", "1")
    assert by[("account", PIOTR)]["promises_broken"] == "1"


@pytest.mark.parametrize("fmt", ["table", "json", "html"])
def test_every_format_names_the_clients_below_the_target(config, fmt):
    text = report(config, fmt)
    if fmt == "json":
        assert json.loads(text)["clients_below_target"] == ["Acme", "Sklep Kwiatowy"]
    elif fmt == "table":
        below = text.split("Clients below the target (90%), however few their emails:\n")[1]
        assert [line.split()[0] for line in below.split("\n\n")[0].splitlines()] == [
            "Acme", "Sklep"]
    else:
        below = text.split('id="below-target"')[1].split("</p>")[0]
        assert "Acme</strong> 0.0% (0 of 1 in time, 1 email)" in below
        assert "Sklep Kwiatowy</strong> 50.0% (1 of 2 in time, 2 emails)" in below
