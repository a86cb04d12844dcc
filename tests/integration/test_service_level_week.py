"""A known week of history on a live server gives exactly the expected service level.

Office calendar Europe/Warsaw Mon-Fri 09:00-17:00 with Polish holidays (Wed 11 Nov 2026
is Independence Day); policy: 2 business hours. The week of Mon 9 Nov 2026:

| # | client | account | received (Warsaw) | replied          | business minutes | |
|---|--------|---------|-------------------|------------------|------------------|-|
| 1 | Acme   | anna    | Mon 09 10:00      | Mon 09 10:30     | 30               | on time |
| 2 | Acme   | anna    | Tue 10 16:30      | Thu 12 09:45     | 30 + holiday + 45 = 75 | on time |
| 3 | Globex | piotr   | Fri 13 16:00      | Mon 16 11:00     | 60 + 120 = 180   | late |
| 4 | Globex | piotr   | Sat 14 12:00      | Mon 16 10:00     | counts from Mon 09:00: 60 | on time |
| 5 | Acme   | anna    | Thu 12 12:00      | never            | -                | overdue |

Service level 3/5; median of (30, 60, 75, 180) = 67.5; p90 (linear) = 148.5.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest
from tests.servers.imapserver import make_message
from tests.support.run_once import ackwatch

pytestmark = pytest.mark.integration

CET = dt.timezone(dt.timedelta(hours=1))


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=CET)


WEEK = [
    # (n, client domain, sender, user, received, replied)
    (1, "acme.example", "anna", at(9, 10), at(9, 10, 30)),
    (2, "acme.example", "anna", at(10, 16, 30), at(12, 9, 45)),
    (3, "globex.example", "piotr", at(13, 16), at(16, 11)),
    (4, "globex.example", "piotr", at(14, 12), at(16, 10)),
    (5, "acme.example", "anna", at(12, 12), None),
]


def test_a_known_week_gives_the_exact_service_level(imap_server, tmp_path):
    users = {"anna": imap_server.add_user(), "piotr": imap_server.add_user()}
    for n, domain, account, received, replied in WEEK:
        mid = f"<week-{n}@{domain}>"
        imap_server.append(users[account], "INBOX", make_message(
            subject=f"Request {n}", sender=f"client@{domain}", to=f"{account}@agency.example",
            message_id=mid), internaldate=received)
        if replied is not None:
            imap_server.append(users[account], "Sent", make_message(
                subject=f"Re: Request {n}", sender=f"{account}@agency.example",
                to=f"client@{domain}", in_reply_to=mid), internaldate=replied)
    mailboxes = ""
    for name, user in users.items():
        pw = tmp_path / f"{name}.pass"
        pw.write_text(imap_server.password(user) + "\n")
        pw.chmod(0o600)
        mailboxes += textwrap.dedent(f"""\
          - {{name: {name}, host: {imap_server.host}, port: {imap_server.port}, security: none,
             username: {user}, password_file: {pw}, owner: {name}@agency.example,
             folders: {{inbox: [INBOX], sent: [Sent]}}, timeout: 10}}
        """)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {tmp_path / "state"}
        agency: {{domains: [agency.example]}}
        calendars:
          office: {{timezone: Europe/Warsaw, hours: {{mon-fri: "09:00-17:00"}}, holidays: PL}}
        policies:
          default: {{window: 2h, clock: business, calendar: office, nudge_before: 30m,
                     escalate_after: 0m}}
        accounts:
          - {{email: anna@agency.example, name: Anna, manager: kasia@agency.example}}
          - {{email: piotr@agency.example, name: Piotr, manager: kasia@agency.example}}
        clients:
          - {{name: Acme, match: [acme.example], account: anna@agency.example}}
          - {{name: Globex, match: [globex.example], account: piotr@agency.example}}
        digest: {{enabled: false}}
        mailboxes:
        """) + mailboxes)
    result = ackwatch("backfill", "-c", str(cfg), "--since", "2026-11-01")
    assert result.returncode == 0, result.stderr

    rep = ackwatch("report", "-c", str(cfg), "--format", "json", "--since", "2026-11-09",
                   "--until", "2026-11-16")
    assert rep.returncode == 0, rep.stderr
    data = json.loads(rep.stdout)
    t = data["totals"]
    assert (t["client_emails"], t["acknowledged"], t["within_window"], t["overdue"]) == (5, 4, 3, 1)
    assert t["service_level"] == pytest.approx(0.6)
    assert t["median_minutes"] == pytest.approx(67.5)
    assert t["p90_minutes"] == pytest.approx(148.5)
    by_account = {g["account"]: g for g in data["by_account"]}
    assert by_account["anna@agency.example"]["service_level"] == pytest.approx(2 / 3, abs=1e-4)
    assert by_account["anna@agency.example"]["median_minutes"] == pytest.approx(52.5)
    assert by_account["piotr@agency.example"]["service_level"] == pytest.approx(0.5)
    assert by_account["piotr@agency.example"]["median_minutes"] == pytest.approx(120)
    by_client = {g["client"]: g for g in data["by_client"]}
    assert (by_client["Acme"]["client_emails"], by_client["Globex"]["client_emails"]) == (3, 2)
    assert {b["subject"] for b in data["breaches"]} == {"Request 3", "Request 5"}
