"""A realistic `Config` built straight from the dataclasses (no YAML loader involved).

    from configfactory import make_config, make_client, make_account, make_mailbox

    config = make_config()                                   # the agency below
    config = make_config(unknown_senders="ignore")           # any Config field overridden
    config = make_config(clients=(make_client("Acme", "acme.example", account=None),))
    config = make_config(policies={**POLICIES, "default": make_policy("default", window="4h")})

The agency (agency.example, Europe/Warsaw):
- accounts: anna (Anna Nowak, manager kasia, backup piotr, pl), piotr (Piotr Wiśniewski,
  manager kasia, backup anna, pl), kasia (Kasia Lewandowska, the manager, en);
- agency.addresses: designer@freelance.example; form_senders: forms@agency.example;
- agency.trust: Authentication-Results of mail.agency.example, relays 192.0.2.25 and
  mail.agency.example (inbox_agency_mail: verified, the default);
- calendar "office": Mon-Fri 09:00-17:00 Europe/Warsaw, PL holidays, closed 2026-12-24 and
  2026-12-31;
- policies: default (2h business on "office", nudge 30m before, escalate at the deadline)
  and retainer (24h calendar clock, nudge 4h before, escalate at the deadline);
- clients: Acme (acme.example + ceo@mail.example, anna, retainer), Globex (globex.example,
  piotr, default), Initech (glob "*@initech.*", no account), Sklep Kwiatowy
  (sklep-kwiatowy.example, anna); unknown senders tracked;
- mailboxes anna, piotr (owners themselves) and office (office@agency.example, owner kasia);
- ignore: senders noreply@*, *@notifications.example; subjects ^Automatic reply.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from ackwatch.config import (
    Account,
    Agency,
    CalendarConfig,
    Client,
    Config,
    Folders,
    IgnoreRules,
    MailboxConfig,
    OpenRange,
    Policy,
    SecretRef,
    SmtpConfig,
    Trust,
)

AGENCY_DOMAIN = "agency.example"
ANNA = "anna@agency.example"
PIOTR = "piotr@agency.example"
KASIA = "kasia@agency.example"
OFFICE = "office@agency.example"
FORMS = "forms@agency.example"
# The agency's own mail server: its Authentication-Results and its relays are trusted.
AGENCY_AUTHSERV_ID = "mail.agency.example"
AGENCY_RELAYS = ("192.0.2.25", "mail.agency.example")

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def duration(value: str | dt.timedelta) -> dt.timedelta:
    """ "2h", "1h30m", "45m", "3d" -> timedelta (the config file's notation)."""
    if isinstance(value, dt.timedelta):
        return value
    parts = re.findall(r"(\d+)([dhms])", value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        raise ValueError(f"bad duration {value!r}")
    return dt.timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def hours(spec: str = "09:00-17:00", days: str = "mon-fri") -> tuple[tuple[OpenRange, ...], ...]:
    """Weekly hours: the same ranges ("09:00-12:00,13:00-17:00") on `days` ("mon-fri",
    "mon,wed", "mon-sun"); other days closed."""
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    selected: set[int] = set()
    for part in days.split(","):
        if "-" in part:
            a, b = part.split("-")
            selected.update(range(names.index(a), names.index(b) + 1))
        else:
            selected.add(names.index(part))

    def minutes(hhmm: str) -> int:
        h, m = hhmm.split(":")
        return int(h) * 60 + int(m)

    ranges = tuple(
        OpenRange(minutes(a), minutes(b)) for a, b in (r.split("-") for r in spec.split(","))
    )
    return tuple(ranges if i in selected else () for i in range(7))


def office_calendar(**changes: object) -> CalendarConfig:
    values: dict[str, object] = {
        "name": "office",
        "timezone": "Europe/Warsaw",
        "hours": hours("09:00-17:00", "mon-fri"),
        "holidays": "PL",
        "holiday_subdivision": None,
        "closed": frozenset({dt.date(2026, 12, 24), dt.date(2026, 12, 31)}),
    }
    values.update(changes)
    return CalendarConfig(**values)  # type: ignore[arg-type]


def make_policy(
    name: str,
    *,
    window: str | dt.timedelta = "2h",
    clock: str = "business",
    calendar: str | None = "office",
    nudge_before: str | dt.timedelta = "30m",
    escalate_after: str | dt.timedelta | None = "0m",
) -> Policy:
    return Policy(
        name=name,
        window=duration(window),
        clock=clock,  # type: ignore[arg-type]
        calendar=calendar,
        nudge_before=duration(nudge_before),
        escalate_after=None if escalate_after is None else duration(escalate_after),
    )


DEFAULT_POLICY = make_policy("default")
RETAINER_POLICY = make_policy(
    "retainer", window="24h", clock="calendar", calendar=None, nudge_before="4h"
)
POLICIES = {"default": DEFAULT_POLICY, "retainer": RETAINER_POLICY}


def make_account(email: str, name: str, **changes: object) -> Account:
    return Account(email=email.lower(), name=name, **changes)  # type: ignore[arg-type]


ACCOUNTS = (
    make_account(ANNA, "Anna Nowak", manager=KASIA, backup=PIOTR, language="pl"),
    make_account(PIOTR, "Piotr Wiśniewski", manager=KASIA, backup=ANNA, language="pl"),
    make_account(KASIA, "Kasia Lewandowska", language="en"),
)


def make_client(name: str, *match: str, **changes: object) -> Client:
    return Client(name=name, match=tuple(match), **changes)  # type: ignore[arg-type]


CLIENTS = (
    make_client("Acme", "acme.example", "ceo@mail.example", account=ANNA, policy="retainer"),
    make_client("Globex", "globex.example", account=PIOTR),
    make_client("Initech", "*@initech.*"),
    make_client("Sklep Kwiatowy", "sklep-kwiatowy.example", account=ANNA),
)


def make_mailbox(
    name: str, username: str | None = None, owner: str | None = None, **changes: object
) -> MailboxConfig:
    """A TLS mailbox on imap.agency.example; username defaults to <name>@agency.example."""
    username = username or f"{name}@{AGENCY_DOMAIN}"
    values: dict[str, object] = {
        "name": name,
        "host": "imap.agency.example",
        "port": 993,
        "security": "tls",
        "username": username,
        "password": SecretRef("file", f"/etc/ackwatch/{name}.pass"),
        "oauth2_token": None,
        "folders": Folders(inbox=("INBOX",), sent="auto"),
        "owner": owner if owner is not None else username,
    }
    values.update(changes)
    return MailboxConfig(**values)  # type: ignore[arg-type]


MAILBOXES = (
    make_mailbox("anna"),
    make_mailbox("piotr"),
    make_mailbox("office", OFFICE, owner=KASIA),
)

SMTP = SmtpConfig(
    host="smtp.agency.example",
    port=587,
    security="starttls",
    from_address="ackwatch <ackwatch@agency.example>",
    username="ackwatch@agency.example",
    password=SecretRef("env", "ACKWATCH_SMTP_PASSWORD"),
)


def make_config(**changes: object) -> Config:
    """The agency described in this module's docstring; keywords replace `Config` fields."""
    config = Config(
        path=Path("/etc/ackwatch/config.yaml"),
        timezone="Europe/Warsaw",
        state_dir=Path("/var/lib/ackwatch"),
        agency=Agency(
            domains=(AGENCY_DOMAIN,),
            addresses=("designer@freelance.example",),
            form_senders=(FORMS,),
            trust=Trust(authserv_ids=(AGENCY_AUTHSERV_ID,), relays=AGENCY_RELAYS),
        ),
        calendars={"office": office_calendar()},
        policies=dict(POLICIES),
        accounts=ACCOUNTS,
        clients=CLIENTS,
        unknown_senders="track",
        mailboxes=MAILBOXES,
        smtp=SMTP,
        ignore=IgnoreRules(
            senders=("noreply@*", "*@notifications.example"),
            subjects=(re.compile("^Automatic reply"),),
        ),
    )
    return config.replace(**changes) if changes else config
