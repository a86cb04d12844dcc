"""What a start imports: modules a config does not use are not loaded (each start pays
for every import; `run --once` is measured against a bare script in bench target 1)."""

from __future__ import annotations

import json
import subprocess
import sys

from ackwatch.daemon.evaluation import evaluation_fingerprint
from configfactory import make_config, office_calendar

OPTIONAL = ("holidays", "prometheus_client", "waitress", "ackwatch.reporting.ack_time",
            "ackwatch.reporting.figures", "ackwatch.reporting.digest",
            "ackwatch.core.promise_text", "charset_normalizer", "psycopg",
            "ackwatch.store.postgres", "msal", "google.auth", "ackwatch.oauth2.providers")


def loaded_after(code: str) -> set[str]:
    """Which of `OPTIONAL` a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport json, sys; print(json.dumps(sorted(set({OPTIONAL!r}) & set(sys.modules))))"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": "tests:src"})
    return set(json.loads(run.stdout.splitlines()[-1]))


NO_HOLIDAYS = ("from configfactory import make_config, office_calendar; import dataclasses; "
               "config = make_config(calendars={'office': dataclasses.replace("
               "office_calendar(), holidays=None)})")


def test_a_start_without_holiday_countries_or_metrics_loads_neither():
    code = (f"{NO_HOLIDAYS}\n"
            "from ackwatch import cli\n"
            "from ackwatch.daemon.evaluation import evaluation_fingerprint\n"
            "from ackwatch.daemon.service import Daemon\n"
            "from ackwatch.core.business_clock import BusinessCalendar\n"
            "from ackwatch.daemon.metrics import Metrics, Snapshot\n"
            "evaluation_fingerprint(config)\n"
            "BusinessCalendar(config.calendars['office']).holidays_in(2026)\n"
            "Metrics().publish(Snapshot())")
    assert loaded_after(code) == set()


def test_a_state_in_sqlite_never_loads_psycopg(tmp_path):
    code = ("import datetime as dt\n"
            "from ackwatch.store import open_store\n"
            f"s = open_store({str(tmp_path)!r})\n"
            "s.set_meta('x', 'y'); s.outbox_pending(); s.pending_items()\n"
            "s.report_rows(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC),"
            " stored=True)\n"
            "s.open_reader().health(); s.close()")
    assert loaded_after(code) == set()


def test_a_calendar_naming_a_country_loads_the_holidays():
    code = ("from configfactory import office_calendar\n"
            "from ackwatch.core.business_clock import BusinessCalendar\n"
            "BusinessCalendar(office_calendar())")
    assert loaded_after(code) == {"holidays"}


def test_the_charset_detector_is_loaded_by_the_first_mail_with_raw_8bit_headers():
    parse = ("from ackwatch.core.message import parse_message\n"
             "import datetime as dt\n"
             "def parse(data):\n"
             "    parse_message(data, mailbox='a', folder='INBOX', role='inbox', uid=1,\n"
             "                  received=dt.datetime(2026, 11, 23, tzinfo=dt.UTC))\n"
             "parse('From: Иван <i@x.example>\\r\\nSubject: Смета\\r\\n\\r\\n'.encode())\n")
    assert loaded_after(parse) == set()
    raw = parse + "parse('Subject: Смета\\r\\n\\r\\n'.encode('cp1251'))\n"
    assert loaded_after(raw) == {"charset_normalizer"}


def test_the_metrics_registry_is_made_when_first_needed():
    code = "from ackwatch.daemon.metrics import Metrics\nMetrics().observe_ack('calendar', 60.0)"
    assert loaded_after(code) == {"prometheus_client"}


def test_the_holiday_tables_count_in_the_fingerprint_only_when_a_calendar_names_a_country(
    monkeypatch,
):
    import dataclasses

    import holidays

    with_country = make_config()
    without = make_config(calendars={"office": dataclasses.replace(office_calendar(),
                                                                   holidays=None)})
    before = evaluation_fingerprint(with_country), evaluation_fingerprint(without)
    monkeypatch.setattr(holidays, "__version__", "0.0.0-other")
    after = evaluation_fingerprint(with_country), evaluation_fingerprint(without)
    assert after[0] != before[0]  # new holiday tables: evaluate again
    assert after[1] == before[1]  # no country: the tables cannot change an item


def test_oauth2_apps_load_their_provider_library_only_when_a_token_is_first_needed(tmp_path):
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account", "client_email": "a@b.example",
                               "private_key": "not a key", "token_uri": "http://127.0.0.1:9/t"}))
    setup = ("from ackwatch.config import OAuth2App, SecretRef\n"
             "from ackwatch import cli, oauth2\n"
             "from ackwatch.mail import connection, smtp\n"
             "from ackwatch.daemon.service import Daemon\n"
             f"app = OAuth2App('workspace', 'google', service_account=SecretRef('file', {str(key)!r}))\n")
    assert loaded_after(setup) == set()
    fetch = setup + ("try:\n    oauth2.Tokens().token(app, 'anna@agency.example')\n"
                     "except oauth2.TokenError:\n    pass\n")
    loaded = loaded_after(fetch)
    assert {"google.auth", "ackwatch.oauth2.providers"} <= loaded and "msal" not in loaded
