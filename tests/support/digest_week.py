"""A week of client mail for the weekly digest's tests (Mon 16 - Mon 23 Nov 2026, Warsaw):
Globex is busy and mostly answered in time, Acme (retainer) too, Sklep Kwiatowy sent two
mails and one was late, a gmail.com lead waited in vain, and a client name carries
markup. `digest_mail` renders it for any recipient and config."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from ackwatch.config import Config
from ackwatch.core.item_rules import deadlines_for
from ackwatch.reporting import digest
from ackwatch.reporting.figures import Report, ReportItem, compute
from configfactory import ANNA, KASIA, PIOTR, make_config

WAW = ZoneInfo("Europe/Warsaw")
SINCE = dt.datetime(2026, 11, 16, tzinfo=WAW)
UNTIL = SINCE + dt.timedelta(days=7)
NOW = UNTIL + dt.timedelta(hours=9, minutes=1)
HOSTILE_CLIENT = "<b>Bold & Co</b>"


def _mail(n: int, client: str | None, address: str, account: str, received: dt.datetime,
          minutes: float | None, config: Config) -> ReportItem:
    policy = "retainer" if client == "Acme" else "default"
    d = deadlines_for(received, policy, config)
    start = max(received, d.deadline - config.policies[policy].window)
    ack = None if minutes is None else start + dt.timedelta(minutes=minutes)
    return ReportItem(key=f"<{n}@example>", client=client, client_address=address,
                      account=account, subject=f"Quote {n}", received=received,
                      deadline=d.deadline, ack_at=ack, policy=d.policy, clock=d.clock)


def week_items(config: Config, since: dt.datetime = SINCE, seed: int = 2026
               ) -> list[ReportItem]:
    rng = random.Random(seed)
    items = []
    for n in range(36):  # Globex: busy, a few late
        received = since + dt.timedelta(days=n % 5, hours=9, minutes=rng.randrange(0, 420))
        late = rng.random() < 0.08
        items.append(_mail(n, "Globex", "grace@globex.example", PIOTR, received,
                           rng.uniform(130, 300) if late else rng.uniform(5, 90), config))
    for n in range(100, 112):  # Acme on the 24h retainer
        received = since + dt.timedelta(days=n % 5, hours=11)
        items.append(_mail(n, "Acme", "ceo@mail.example", ANNA, received,
                           rng.uniform(30, 600), config))
    items.append(_mail(200, "Sklep Kwiatowy", "ola@sklep-kwiatowy.example", ANNA,
                       since + dt.timedelta(days=1, hours=10), 25, config))
    items.append(_mail(201, "Sklep Kwiatowy", "ola@sklep-kwiatowy.example", ANNA,
                       since + dt.timedelta(days=3, hours=14), 200, config))
    items.append(_mail(300, None, "lead@gmail.com", PIOTR,
                       since + dt.timedelta(days=2, hours=12), None, config))
    items.append(_mail(400, HOSTILE_CLIENT, "x@bold.example", ANNA,
                       since + dt.timedelta(days=4, hours=9), 15, config))
    return sorted(items, key=lambda i: i.received)


def reports(config: Config) -> tuple[Report, Report]:
    """This week and the week before."""
    before = SINCE - dt.timedelta(days=7)
    return (
        compute(week_items(config), config, since=SINCE, until=UNTIL, now=NOW, rows=False),
        compute(week_items(config, before, seed=7), config, since=before, until=SINCE,
                now=NOW, rows=False),
    )


def config_with(manager_language: str | None = "en", **changes: object) -> Config:
    """The factory's agency; Kasia (the manager) speaks ``manager_language``; None: Kasia
    is no account at all (only named as the manager)."""
    config = make_config(**changes)
    accounts = tuple(
        dataclasses.replace(a, language=manager_language) if a.email == KASIA else a
        for a in config.accounts if manager_language is not None or a.email != KASIA
    )
    return dataclasses.replace(config, accounts=accounts)


def render(config: Config, recipient: str = KASIA) -> EmailMessage:
    this_week, week_before = reports(config)
    return digest.render(config, recipient, this_week, week_before,
                         smtp_from="ackwatch <ackwatch@agency.example>",
                         message_id="<digest@agency.example>")


def parts(msg: EmailMessage) -> tuple[str, str]:
    """(plain text, HTML) of a digest mail."""
    return (msg.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
            msg.get_body(("html",)).get_content())  # type: ignore[union-attr]
