"""Mails ackwatch sends (nudges, escalations, summaries): rendering and SMTP delivery.

Two halves:

- `render(notice, ...)` turns a `Notice` (who, what, in which language and timezone)
  into a multipart/alternative `EmailMessage` from the template files in
  ``ackwatch/templates/`` (ops may override any of them with a file of the same relative
  name in ``notify.templates_dir``; see ``templates/README.md``). Pure apart from reading
  those files: ``now`` is a field of the notice, nothing reads the clock.
- `send(msg, smtp)` delivers it over SMTP (``tls`` / ``starttls`` / ``none`` on loopback)
  and classifies failures as `TemporarySendError` (retry later) or `PermanentSendError`.

Everything client-supplied (subjects, names, addresses, message ids) is untrusted: it is
HTML-escaped in the HTML part, and stripped of control and bidi-override characters and
capped in length everywhere, so it can neither inject markup nor headers nor disguise
itself.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import html
import ipaddress
import math
import re
import smtplib
import socket
import ssl
import string
import threading
import tomllib
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from ackwatch.config import Config, SecretRef, SmtpConfig
from ackwatch.mail import smtpauth

log = structlog.get_logger(__name__)

__all__ = [
    "Notice",
    "NoticeKind",
    "NoticeLine",
    "PermanentSendError",
    "SendError",
    "TemporarySendError",
    "clean_text",
    "make_message_id",
    "render",
    "render_outbox",
    "send",
]

NoticeKind = Literal["nudge", "escalation", "summary", "digest", "promise", "promise-overdue"]
RENDERABLE_KINDS = ("nudge", "escalation", "summary", "promise", "promise-overdue")
KINDS = (*RENDERABLE_KINDS, "digest")

SUBJECT_LIMIT = 200  # client subjects, in characters, ellipsis included
NAME_LIMIT = 100  # client / account display names
ADDRESS_LIMIT = 254
MAIL_SUBJECT_LIMIT = 250  # our own Subject header
ITEMS_HEADER_LIMIT = 2000  # X-Ackwatch-Items is omitted when longer than this
MESSAGE_ID_LIMIT = 250
SMTP_TOTAL_TIMEOUTS = 3  # a whole delivery may take at most this many smtp.timeout


# --------------------------------------------------------------------------- domain input


@dataclass(frozen=True)
class NoticeLine:
    """One client email in a mail. Strings are untrusted (they come from the client)."""

    client: str  # configured client name, else the sender address
    client_address: str
    subject: str
    received: dt.datetime  # aware
    deadline: dt.datetime  # aware
    message_id: str | None = None  # the client message's Message-ID, "<...>"
    mailboxes: tuple[str, ...] = ()  # watched mailboxes it was seen in
    account: str | None = None  # who handles it (name or address); shown in summaries
    escalation: bool = False  # in a summary: this line is an escalation, not a nudge
    # Promise notices (issue 8): the sentence that promised; `deadline` is the promised
    # instant and `received` when the promise was made.
    sentence: str | None = None

    def __post_init__(self) -> None:
        _require_aware("NoticeLine.received", self.received)
        _require_aware("NoticeLine.deadline", self.deadline)

    def overdue(self, now: dt.datetime) -> bool:
        return now >= self.deadline


@dataclass(frozen=True)
class Notice:
    """One mail to render: a nudge, an escalation or a summary for one recipient."""

    kind: NoticeKind
    to: str  # recipient address (the account, its backup, or the manager)
    lines: tuple[NoticeLine, ...]
    now: dt.datetime  # aware; "time left" / "overdue by" are relative to it
    cc: tuple[str, ...] = ()
    language: str = "en"  # en | pl | uk | bg (or one added in templates_dir); else en
    timezone: str = "UTC"  # IANA name; every time in the mail is shown in it
    recipient_name: str | None = None
    account: str | None = None  # escalations: whose items (address)
    account_name: str | None = None  # its display name (subject: "Anna Nowak has ...")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown notice kind {self.kind!r}")
        _require_aware("Notice.now", self.now)
        if not isinstance(self.lines, tuple) or not isinstance(self.cc, tuple):
            raise TypeError("Notice.lines and Notice.cc must be tuples")


def _require_aware(what: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")


# --------------------------------------------------------------------------- sanitizing

# Unicode's Bidi_Control characters: explicit embeddings/overrides (U+202A-U+202E),
# isolates (U+2066-U+2069) and the implicit marks (U+061C, U+200E, U+200F). They can make
# "exe.txt" display as "txt.exe" or reorder a subject; shown text never needs them.
_BIDI_CONTROLS = dict.fromkeys(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)
# C0/C1 controls (CR, LF, TAB, NUL, NEL, ...), DEL and the Unicode line/paragraph separators.
_CONTROL_RUN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_text(value: object, limit: int = SUBJECT_LIMIT) -> str:
    """Untrusted text made safe to show on one line: no control characters (so no CR/LF
    header or line injection), no bidi overrides, whitespace collapsed, lone surrogates
    replaced, and at most ``limit`` characters (the last one an ellipsis when cut)."""
    text = "" if value is None else str(value)
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    text = text.translate(_BIDI_CONTROLS)
    text = _CONTROL_RUN.sub(" ", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text


_MESSAGE_ID_RE = re.compile(r"<[!-;=?-~]+>")  # printable ASCII except "<", ">", space


def _safe_message_id(value: str | None) -> str | None:
    """A client Message-ID fit for a header, or None (untrusted: dropped when odd)."""
    if not value:
        return None
    value = value.strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    if len(value) > MESSAGE_ID_LIMIT or not _MESSAGE_ID_RE.fullmatch(value):
        return None
    return value


# RFC 5322 specials that make a display name a quoted-string, and the longest such name
# that still fits on one folded header line (quotes and escapes included).
_NAME_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
_QUOTED_NAME_MAX = 70


def _address(value: str, display_name: str | None = None) -> Address:
    """A recipient address from the config; raises ValueError when it is not one."""
    addr = value.strip()
    if not addr or len(addr) > ADDRESS_LIMIT or _CONTROL_RUN.search(addr) or " " in addr:
        raise ValueError(f"not a usable email address: {clean_text(addr, 80)!r}")
    name = clean_text(display_name, NAME_LIMIT) if display_name else ""
    quoted = len(name) + name.count('"') + name.count("\\") + 2
    if quoted > _QUOTED_NAME_MAX and _NAME_SPECIALS.search(name):
        # The email package folds a quoted display name longer than a line *without* its
        # quotes: "Nowak, Anna ..." would go out as two addresses, "... <x>" as another
        # one. A name that long loses its specials instead (it only needs to be readable).
        name = " ".join(_NAME_SPECIALS.sub(" ", name).split())
    try:
        return Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError) as e:  # email's parser raises both on garbage
        raise ValueError(f"not a usable email address: {clean_text(addr, 80)!r}") from e


def message_id_domain(config: Config) -> str:
    """The domain of ackwatch's own Message-IDs: ``smtp.from``'s, else the agency's first."""
    if config.smtp is not None:
        addr = getaddresses([config.smtp.from_address])[0][1]
        if "@" in addr:
            return addr.rsplit("@", 1)[1]
    return config.agency.domains[0] if config.agency.domains else "ackwatch.invalid"


def make_message_id(domain: str) -> str:
    """A fresh Message-ID of ours: ``<ackwatch.<uuid hex>@domain>``."""
    domain = domain.strip().lower()
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?", domain):
        raise ValueError(f"not a usable Message-ID domain: {clean_text(domain, 80)!r}")
    return f"<ackwatch.{uuid.uuid4().hex}@{domain}>"


def _domain_of(from_header: str) -> str:
    addrs = getaddresses([from_header])
    addr = addrs[0][1] if addrs else ""
    if "@" not in addr:
        raise ValueError("smtp_from has no address with a domain; pass message_id_domain")
    return addr.rsplit("@", 1)[1]


class _IdListHeader(str):
    """X-Ackwatch-Items value, folded by us between ids (never RFC 2047-encoded: the email
    package would encode a long message id as ``=?utf-8?q?...?=``, making it unusable)."""

    name = "X-Ackwatch-Items"

    def __new__(cls, ids: Iterable[str]) -> _IdListHeader:
        ids = tuple(ids)
        obj = super().__new__(cls, " ".join(ids))
        obj.ids = ids
        return obj

    ids: tuple[str, ...]

    def fold(self, *, policy: Any) -> str:
        maxlen = policy.max_line_length or 78
        lines: list[str] = []
        current = f"{self.name}:"
        for mid in self.ids:
            if len(current) + 1 + len(mid) > maxlen and current != f"{self.name}:":
                lines.append(current)
                current = ""
            current += " " + mid
        lines.append(current)
        return policy.linesep.join(lines) + policy.linesep


# --------------------------------------------------------------------------- templates

_PACKAGE_TEMPLATES: Traversable = resources.files("ackwatch") / "templates"
_LANGUAGE_RE = re.compile(r"[a-z]{2,3}")


def _template_roots(templates_dir: Path | None) -> tuple[Traversable | Path, ...]:
    roots: list[Traversable | Path] = []
    if templates_dir is not None:
        roots.append(Path(templates_dir))
    roots.append(_PACKAGE_TEMPLATES)
    return tuple(roots)


def resolve_language(language: str | None, templates_dir: Path | None = None) -> str:
    """The language used for a recipient: "pl-PL" -> "pl"; unknown -> "en"."""
    code = (language or "").strip().lower().replace("_", "-").split("-")[0]
    if not _LANGUAGE_RE.fullmatch(code):
        return "en"
    for root in _template_roots(templates_dir):
        if (root / code / "strings.toml").is_file():
            return code
    return "en"


class _Templates:
    """Template files for one language. A file is looked up in the override directory
    first, then in the package, each time as ``<lang>/<name>`` before ``<name>``."""

    def __init__(self, templates_dir: Path | None, language: str):
        self.roots = _template_roots(templates_dir)
        self.language = language

    def find(self, *names: str) -> str:
        for name in names:
            for root in self.roots:
                for path in (root / self.language / name, root / name):
                    if path.is_file():
                        return path.read_text(encoding="utf-8")
        raise FileNotFoundError(f"no template {' / '.join(names)} for {self.language}")

    def strings(self) -> dict[str, Any]:
        """English package strings, overlaid by the language's package strings, overlaid by
        the override directory's (same language) — so an override needs only changed keys."""
        layers: list[Traversable | Path] = [_PACKAGE_TEMPLATES / "en" / "strings.toml"]
        layers += [root / self.language / "strings.toml" for root in reversed(self.roots)]
        merged: dict[str, Any] = {}
        seen: set[str] = set()
        for path in layers:
            if str(path) in seen or not path.is_file():
                continue
            seen.add(str(path))
            layer = tomllib.loads(path.read_text(encoding="utf-8"))
            for kind in RENDERABLE_KINDS:
                # A layer that rewrites a subject but has no one-email variant: its subject
                # applies to one email too (else an override would silently not apply).
                section = layer.get(kind)
                if isinstance(section, dict) and "subject" in section:
                    merged.get(kind, {}).pop("subject_single", None)
            _deep_merge(merged, layer)
        return merged


def _deep_merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _fill(template: str, values: Mapping[str, str]) -> str:
    # safe_substitute: a typo in an ops template shows up as "$typo" instead of failing the
    # mail. Values are not re-scanned, so a client subject containing "$x" stays literal.
    return string.Template(template).safe_substitute(values)


# --------------------------------------------------------------------------- language rules


def plural_category(language: str, n: int) -> str:
    """CLDR cardinal plural category for the languages ackwatch ships."""
    n = abs(n)
    if language in ("pl", "uk"):
        if language == "pl" and n == 1:
            return "one"
        if language == "uk" and n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    return "one" if n == 1 else "other"


def _plural(forms: Mapping[str, str], language: str, n: int) -> str:
    category = plural_category(language, n)
    for key in (str(n), category, "other", "many"):
        if key in forms:
            return _fill(forms[key], {"n": str(n)})
    return str(n)


_EN_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class _Formatter:
    """Dates and durations in one language and timezone."""

    def __init__(self, strings: Mapping[str, Any], tz: dt.tzinfo, now: dt.datetime):
        date = strings.get("date", {})
        weekdays = date.get("weekdays", _EN_WEEKDAYS)
        months = date.get("months", _EN_MONTHS)
        self.weekdays = tuple(weekdays) if len(weekdays) == 7 else _EN_WEEKDAYS
        self.months = tuple(months) if len(months) == 12 else _EN_MONTHS
        self.date = date
        self.duration = strings.get("duration", {})
        self.tz = tz
        self.now = now.astimezone(tz)

    def _parts(self, local: dt.datetime) -> dict[str, str]:
        return {
            "weekday": self.weekdays[local.weekday()],
            "day": str(local.day),
            "month": self.months[local.month - 1],
            "year": str(local.year),
            "time": local.strftime("%H:%M"),
        }

    def when(self, instant: dt.datetime) -> str:
        """'Mon 23 Nov 14:30' (the year added when it is not the current one)."""
        local = instant.astimezone(self.tz)
        key = "datetime" if local.year == self.now.year else "datetime_other_year"
        return _fill(self.date.get(key, "$weekday $day $month $time"), self._parts(local))

    def short(self, instant: dt.datetime) -> str:
        """'14:30' today, 'Tue 14:30' within the coming week, else the full form."""
        local = instant.astimezone(self.tz)
        if local.date() == self.now.date():
            return local.strftime("%H:%M")
        if abs((local.date() - self.now.date()).days) < 7:
            return _fill(self.date.get("weekday_time", "$weekday $time"), self._parts(local))
        return self.when(instant)

    def remaining(self, deadline: dt.datetime) -> tuple[str, bool]:
        """('1 h 20 min left', False) or ('overdue by 35 min', True)."""
        seconds = (deadline - self.now).total_seconds()
        overdue = seconds <= 0
        # Time left rounds up (never claim less time than there is... nor "0 min left"),
        # overdue rounds down; both show at least one minute.
        minutes = max(1, math.floor(-seconds / 60) if overdue else math.ceil(seconds / 60))
        days, rest = divmod(minutes, 24 * 60)
        hours, mins = divmod(rest, 60)
        units = [("days", days), ("hours", hours), ("minutes", mins)]
        first = next(i for i, (_, v) in enumerate(units) if v)
        shown = [(u, v) for u, v in units[first : first + 2] if v]  # the two largest units
        default = {"days": "$n d", "hours": "$n h", "minutes": "$n min"}
        text = " ".join(_fill(self.duration.get(u, default[u]), {"n": str(v)}) for u, v in shown)
        key, fallback = ("overdue", "overdue by $duration") if overdue else ("left", "$duration left")
        return _fill(self.duration.get(key, fallback), {"duration": text}), overdue


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown_timezone", timezone=clean_text(name, 64), fallback="UTC")
        return dt.UTC


# --------------------------------------------------------------------------- render


def render(
    notice: Notice,
    *,
    smtp_from: str,
    templates_dir: Path | None = None,
    message_id_domain: str | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    """The mail for ``notice``: multipart/alternative (plain text + HTML).

    ``smtp_from`` is the full From header (``SmtpConfig.from_address``).
    ``message_id_domain`` defaults to the domain of ``smtp_from``. Pass ``message_id``
    (from `make_message_id`) to keep the id the outbox recorded when re-rendering.
    """
    if notice.kind not in RENDERABLE_KINDS:
        raise NotImplementedError(f"rendering {notice.kind!r} mails is not implemented")
    if not notice.lines:
        raise ValueError("a notice needs at least one line")

    language = resolve_language(notice.language, templates_dir)
    templates = _Templates(templates_dir, language)
    strings = templates.strings()
    tz = _zone(notice.timezone)
    fmt = _Formatter(strings, tz, notice.now)
    kind_strings: Mapping[str, str] = strings.get(notice.kind, {})

    lines = sorted(notice.lines, key=lambda ln: (ln.deadline, ln.received))
    count = len(lines)
    emails = _plural(strings.get("emails", {"other": "$n"}), language, count)
    first_due = fmt.short(lines[0].deadline)
    overdue_count = sum(1 for ln in lines if ln.overdue(notice.now))
    recipient_name = clean_text(notice.recipient_name, NAME_LIMIT)
    account_name = clean_text(notice.account_name or notice.account or "", NAME_LIMIT)
    tz_name = getattr(tz, "key", "UTC")

    subject_vars = {"emails": emails, "n": str(count), "first_due": first_due,
                    "account": account_name, "overdue": str(overdue_count),
                    "promises": _plural(strings.get("promises", {"other": "$n"}), language, count),
                    "client": clean_text(lines[0].client, NAME_LIMIT)}
    subject_template = kind_strings.get("subject", "ackwatch: $emails")
    if count == 1 and "subject_single" in kind_strings:
        subject_template = kind_strings["subject_single"]
    mail_subject = clean_text(_fill(subject_template, subject_vars), MAIL_SUBJECT_LIMIT)

    labels = {f"label_{k}": str(v) for k, v in strings.get("labels", {}).items()}
    text_vars: dict[str, str] = {
        **labels,
        "mail_subject": mail_subject,
        "greeting": _fill(strings.get("greeting", ""), {"name": recipient_name}),
        "intro": _fill(kind_strings.get("intro", ""), subject_vars),
        "footer": _fill(kind_strings.get("footer", ""), subject_vars),
        "times_note": _fill(strings.get("times_note", ""), {"timezone": tz_name}),
        "count": str(count),
        "overdue_count": str(overdue_count),
        "emails": emails,
        "first_due": first_due,
        "recipient": clean_text(notice.to, ADDRESS_LIMIT),
        "recipient_name": recipient_name,
        "account": account_name,
        "account_address": clean_text(notice.account or "", ADDRESS_LIMIT),
        "language": language,
        "timezone": tz_name,
        "now": fmt.when(notice.now),
        "kind": notice.kind,
    }

    item_txt = templates.find(f"{notice.kind}_item.txt", "item.txt")
    item_html = templates.find(f"{notice.kind}_item.html", "item.html")
    items_txt: list[str] = []
    items_html: list[str] = []
    for line in lines:
        values = _line_values(line, fmt, labels, default_account=account_name or recipient_name)
        items_txt.append(_fill(item_txt, values))
        items_html.append(_fill(item_html, _escaped(values)))

    text = _fill(templates.find(f"{notice.kind}.txt"), {**text_vars, "items": "".join(items_txt)})
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    body_html = _fill(
        templates.find(f"{notice.kind}.html"),
        {**_escaped(text_vars), "items": "".join(items_html)},
    )

    msg = EmailMessage()
    msg["From"] = smtp_from
    msg["To"] = _address(notice.to, notice.recipient_name)
    to_lower = notice.to.strip().lower()
    cc = [c for c in dict.fromkeys(a.strip() for a in notice.cc) if c.lower() != to_lower]
    if cc:
        msg["Cc"] = [_address(c) for c in cc]
    msg["Subject"] = mail_subject
    msg["Date"] = format_datetime(notice.now.astimezone(tz))
    msg["Message-ID"] = message_id or make_message_id(
        message_id_domain or _domain_of(smtp_from)
    )
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834; deliberately no Precedence: bulk
    msg["X-Ackwatch"] = notice.kind
    ids = [i for i in dict.fromkeys(_safe_message_id(ln.message_id) for ln in lines) if i]
    if ids and sum(len(i) + 1 for i in ids) <= ITEMS_HEADER_LIMIT:
        msg["X-Ackwatch-Items"] = _IdListHeader(ids)
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(body_html, subtype="html", cte="quoted-printable")
    msg["Content-Language"] = language  # after set_content, which drops Content-* headers
    return msg


class _OutboxLike(Protocol):
    kind: str
    recipient: str
    cc: tuple[str, ...]
    account: str | None
    escalation_keys: tuple[str, ...]
    message_id: str


class _ItemLike(Protocol):
    key: str
    message_id: str | None
    client_address: str
    client: str | None
    subject: str
    received: dt.datetime
    deadline: dt.datetime
    mailboxes: tuple[str, ...]
    account: str | None


def render_outbox(
    config: Config, record: _OutboxLike, items: Iterable[_ItemLike], now: dt.datetime
) -> EmailMessage:
    """Render a queued outbox mail (`store.OutboxRecord` + its `store.ItemRecord`s).

    Language and timezone are the recipient's (account settings and calendar); a manager
    who is not an account gets the language of the account the mail is about, and the
    config's timezone. The Message-ID is the one the outbox recorded.
    """
    if config.smtp is None:
        raise ValueError("no smtp section in the config")
    recipient = config.account(record.recipient)
    about = config.account(record.account)
    calendar = config.calendar_for_account(record.recipient) if recipient else None
    escalations = set(record.escalation_keys)

    def name_of(address: str | None) -> str | None:
        acc = config.account(address)
        return acc.name if acc and acc.name else address

    lines = tuple(
        NoticeLine(
            client=item.client or item.client_address,
            client_address=item.client_address,
            subject=item.subject,
            received=item.received,
            deadline=item.deadline,
            message_id=item.message_id,
            mailboxes=tuple(item.mailboxes),
            account=name_of(item.account),
            escalation=item.key in escalations,
        )
        for item in items
    )
    notice = Notice(
        kind=record.kind,  # type: ignore[arg-type]
        to=record.recipient,
        cc=tuple(record.cc),
        lines=lines,
        now=now,
        language=(recipient or about).language if (recipient or about) else "en",
        timezone=calendar.timezone if calendar else config.timezone,
        recipient_name=recipient.name if recipient else None,
        account=record.account,
        account_name=name_of(record.account),
    )
    return render(
        notice,
        smtp_from=config.smtp.from_address,
        templates_dir=config.notify.templates_dir,
        message_id=record.message_id,
    )


def _line_values(
    line: NoticeLine, fmt: _Formatter, labels: Mapping[str, str], *, default_account: str
) -> dict[str, str]:
    client = clean_text(line.client, NAME_LIMIT)
    address = clean_text(line.client_address, ADDRESS_LIMIT)
    if client and address and client.lower() != address.lower():
        client_display = f"{client} <{address}>"
    else:
        client_display = client or address
    remaining, overdue = fmt.remaining(line.deadline)
    mailboxes = ", ".join(clean_text(m, NAME_LIMIT) for m in line.mailboxes if m)
    mailbox_label = labels.get("label_mailbox", "mailbox")
    return {
        **labels,
        "client": client or address,
        "client_address": address,
        "client_display": client_display,
        "subject": clean_text(line.subject, SUBJECT_LIMIT),
        "received": fmt.when(line.received),
        "deadline": fmt.when(line.deadline),
        "remaining": remaining,
        "status": "overdue" if overdue else "left",
        "status_color": "#b00020" if overdue else "#1a7f37",
        "mailboxes": mailboxes,
        "mailboxes_note": f" · {mailbox_label}: {mailboxes}" if mailboxes else "",
        "account": clean_text(line.account, NAME_LIMIT) if line.account else default_account,
        "message_id": _safe_message_id(line.message_id) or "",
        "escalation": "yes" if line.escalation else "",
        "sentence": clean_text(line.sentence, 300) if line.sentence else "",
    }


def _escaped(values: Mapping[str, str]) -> dict[str, str]:
    return {k: html.escape(v, quote=True) for k, v in values.items()}


# --------------------------------------------------------------------------- send


# Why a connection could not be made safe or authenticated (`SendError.failure`): the
# server's or the setup's fault, never the mail's, so the mail waits and is retried.
TLS_FAILURES = ("starttls_not_offered", "starttls_refused", "tls_handshake", "tls_certificate")
AUTH_FAILURES = ("auth_refused", "auth_unusable", "secret_unavailable")
SendFailure = Literal[
    "starttls_not_offered", "starttls_refused", "tls_handshake", "tls_certificate",
    "auth_refused", "auth_unusable", "secret_unavailable",
]


class SendError(Exception):
    """A mail could not be sent. Messages never contain the SMTP password."""

    temporary: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        recipients: Mapping[str, tuple[int, str]] | None = None,
        failure: SendFailure | None = None,
    ):
        super().__init__(message)
        self.code = code
        # Per-recipient refusals: address -> (SMTP code, server text).
        self.recipients: dict[str, tuple[int, str]] = dict(recipients or {})
        # A TLS or credentials failure (`TLS_FAILURES`, `AUTH_FAILURES`); None otherwise.
        self.failure: SendFailure | None = failure

    @property
    def tls_failure(self) -> bool:
        return self.failure in TLS_FAILURES


class TemporarySendError(SendError):
    """Worth retrying later: 4xx replies, refused/timed-out/dropped connections, and
    every TLS or credentials failure (STARTTLS missing, a certificate that does not
    verify, a refused or unusable password): ops or the network fix those, not the mail,
    and the nudge must go out once they are fixed. Never a plain-text fall-back."""

    temporary = True


class PermanentSendError(SendError):
    """Retrying the same mail will not help: 5xx replies to the mail itself, a config
    that can never send (``security: none`` off loopback)."""


class _Secret:
    """Holds the password so that no frame local, repr or traceback shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


class _Redactor:
    """Removes a secret (raw, and as AUTH PLAIN/LOGIN would base64 it) from text."""

    def __init__(self, username: str | None, secret: _Secret | None):
        self._needles: list[str] = []
        if secret is not None and secret.reveal():
            pw = secret.reveal()
            forms = [pw, _b64(pw), _b64(f"\0{username or ''}\0{pw}")]
            self._needles = sorted({f for f in forms if f}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            text = text.replace(needle, "***")
        return text


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8", "replace")).decode("ascii")


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _tls_context(smtp: SmtpConfig) -> ssl.SSLContext:
    # Verified: certificate chain and host name; ca_file replaces the system store.
    return ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)


def send(
    msg: EmailMessage,
    smtp: SmtpConfig,
    *,
    resolve: Callable[[SecretRef], str] | None = None,
    local_hostname: str | None = None,
) -> None:
    """Deliver ``msg`` (From/To/Cc headers give the envelope) through ``smtp``.

    Raises `TemporarySendError` or `PermanentSendError`. When some (not all) recipients
    are refused the mail went out to the others: that is logged (``mail_recipients_refused``)
    and not raised, since retrying would duplicate it for those who got it.
    ``resolve`` resolves the password reference (default: `ackwatch.credentials.resolve_secret`).
    """
    secret: _Secret | None = None
    error: SendError | None = None
    if smtp.username and smtp.password is not None:
        try:
            if resolve is None:
                from ackwatch.credentials import resolve_secret as resolve  # lazy: shell module
            secret = _Secret(resolve(smtp.password))
        except Exception as e:
            error = TemporarySendError(
                f"cannot resolve the SMTP password ({_describe(smtp.password)}): "
                f"{type(e).__name__}",
                failure="secret_unavailable",
            )
    redact = _Redactor(smtp.username, secret)

    refused: dict[str, tuple[int, bytes]] = {}
    if error is None:
        try:
            refused = _deliver(msg, smtp, secret, local_hostname)
        except Exception as e:
            error = _classify(e, smtp, redact)
    # Raised outside the except blocks so that the smtplib exception (whose frames hold
    # the password in their locals) is neither the __cause__ nor the __context__.
    if error is not None:
        # A SendError raised deep in the conversation carries its own traceback and
        # context (smtplib's frames): drop them too.
        error.__cause__ = error.__context__ = None
        _log_failure(error, smtp)
        raise error.with_traceback(None)

    to = [addr for _, addr in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))]
    if refused:
        log.warning(
            "mail_recipients_refused",
            kind=msg.get("X-Ackwatch"),
            message_id=msg.get("Message-ID"),
            refused={a: c for a, (c, _) in refused.items()},
        )
    log.info("mail_sent", kind=msg.get("X-Ackwatch"), to=to, message_id=msg.get("Message-ID"))


def _deliver(
    msg: EmailMessage,
    smtp: SmtpConfig,
    secret: _Secret | None,
    local_hostname: str | None,
) -> dict[str, tuple[int, bytes]]:
    if smtp.security == "none" and not _is_loopback(smtp.host):
        raise PermanentSendError(
            f"smtp.security 'none' is allowed on loopback only, not {smtp.host!r}"
        )
    conn: smtplib.SMTP
    if smtp.security == "tls":
        conn = smtplib.SMTP_SSL(
            local_hostname=local_hostname, timeout=smtp.timeout, context=_tls_context(smtp)
        )
    elif smtp.security in ("starttls", "none"):
        conn = smtplib.SMTP(local_hostname=local_hostname, timeout=smtp.timeout)
    else:
        raise PermanentSendError(f"unknown smtp.security {smtp.security!r}")
    # `timeout` bounds each socket operation; a server answering every command just in
    # time could still hold the daemon's core (and its watchdog) for minutes. The whole
    # conversation is cut off after SMTP_TOTAL_TIMEOUTS x timeout (90 s by default, below
    # the unit's WatchdogSec=120).
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:  # the plain socket's shutdown, also under TLS: wakes the reader
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    timer = threading.Timer(smtp.timeout * SMTP_TOTAL_TIMEOUTS, expire)
    timer.daemon = True
    timer.start()
    conn._host = smtp.host  # type: ignore[attr-defined]  # TLS server name (set by __init__(host))
    try:
        code, greeting = conn.connect(smtp.host, smtp.port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, greeting)
        conn.ehlo_or_helo_if_needed()
        if smtp.security == "starttls":
            _starttls(conn, smtp)
        if secret is not None:
            assert smtp.username is not None and smtp.password is not None
            try:
                smtpauth.login(conn, smtp.username, secret.reveal(),
                               source=_describe(smtp.password))
            except smtpauth.CredentialsUnusable as exc:
                raise TemporarySendError(
                    f"{smtp.host}:{smtp.port}: {exc}", failure="auth_unusable"
                ) from None
        refused = conn.send_message(msg)
        with contextlib.suppress(smtplib.SMTPException, OSError):
            conn.quit()  # the mail was accepted; a failed goodbye does not matter
        return dict(refused)
    except Exception:
        if expired.is_set():
            raise TemporarySendError(
                f"{smtp.host}:{smtp.port}: gave up after "
                f"{smtp.timeout * SMTP_TOTAL_TIMEOUTS:g}s (server too slow)"
            ) from None
        raise
    finally:
        timer.cancel()
        conn.close()


def _starttls(conn: smtplib.SMTP, smtp: SmtpConfig) -> None:
    """Upgrade to TLS or raise a TLS failure: never go on in plain text."""
    where = f"{smtp.host}:{smtp.port}"
    if not conn.has_extn("starttls"):
        # The server, or something in between that strips it, does not offer STARTTLS.
        raise TemporarySendError(
            f"{where} does not offer STARTTLS; refusing to send in plain text "
            "(smtp.security: starttls)",
            failure="starttls_not_offered",
        )
    try:
        conn.starttls(context=_tls_context(smtp))
    except smtplib.SMTPResponseException as exc:
        text = clean_text(_text(exc.smtp_error), 300)
        raise TemporarySendError(
            f"{where}: STARTTLS refused: {exc.smtp_code} {text}",
            code=exc.smtp_code, failure="starttls_refused",
        ) from None
    except ssl.SSLError as exc:  # the certificate, or the handshake itself
        raise _tls_error(exc, where) from None
    conn.ehlo()


def _tls_error(exc: ssl.SSLError, where: str) -> TemporarySendError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TemporarySendError(
            f"{where}: TLS certificate verification failed: {exc.verify_message}"
            " (set smtp.ca_file for a private CA)",
            failure="tls_certificate",
        )
    return TemporarySendError(
        f"{where}: TLS handshake failed: {exc.reason or type(exc).__name__}",
        failure="tls_handshake",
    )


def _describe(ref: SecretRef) -> str:
    from ackwatch.credentials import describe  # lazy: shell module

    return describe(ref)


def _log_failure(error: SendError, smtp: SmtpConfig) -> None:
    """TLS and credentials failures are ops problems: loud, on every attempt."""
    if error.failure is None:
        return
    event = "smtp_tls_failed" if error.tls_failure else "smtp_auth_failed"
    log.error(event, host=smtp.host, port=smtp.port, security=smtp.security,
              reason=error.failure, error=str(error))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _classify(exc: BaseException, smtp: SmtpConfig, redact: _Redactor) -> SendError:
    where = f"{smtp.host}:{smtp.port}"
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        recipients = {
            addr: (code, redact(clean_text(_text(text), 300)))
            for addr, (code, text) in exc.recipients.items()
        }
        detail = "; ".join(f"{a}: {c} {t}" for a, (c, t) in recipients.items())
        permanent = bool(recipients) and all(500 <= c < 600 for c, _ in recipients.values())
        cls = PermanentSendError if permanent else TemporarySendError
        return cls(f"{where}: all recipients refused: {detail}", recipients=recipients)
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        text = redact(clean_text(_text(exc.smtp_error), 300))
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            # The credentials, not the mail: retried (loudly) until ops fix them.
            return TemporarySendError(
                f"{where}: authentication failed: {code} {text}", code=code,
                failure="auth_refused",
            )
        what = {
            smtplib.SMTPSenderRefused: "sender refused",
            smtplib.SMTPDataError: "message refused",
            smtplib.SMTPConnectError: "connection refused by greeting",
            smtplib.SMTPHeloError: "EHLO/HELO refused",
        }.get(type(exc), "server error")
        cls = PermanentSendError if 500 <= code < 600 else TemporarySendError
        return cls(f"{where}: {what}: {code} {text}", code=code)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TemporarySendError(f"{where}: server disconnected: {redact(clean_text(str(exc)))}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentSendError(f"{where}: not supported by the server: {redact(str(exc))}")
    if isinstance(exc, smtplib.SMTPException):
        return PermanentSendError(f"{where}: {redact(clean_text(str(exc)))}")
    if isinstance(exc, ssl.SSLError):  # smtp.security: tls, from the first byte
        return _tls_error(exc, where)
    if isinstance(exc, TimeoutError):
        return TemporarySendError(f"{where}: timed out after {smtp.timeout:g}s")
    if isinstance(exc, socket.gaierror):
        return TemporarySendError(f"{where}: cannot resolve host: {exc.strerror}")
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        return TemporarySendError(f"{where}: connection failed: {reason}")
    if isinstance(exc, UnicodeError):
        # Its text quotes the offending character and its position: never shown, it may
        # come from a secret (non-ASCII credentials take `smtpauth`'s path, not this one).
        return PermanentSendError(
            f"{where}: text the SMTP conversation cannot carry ({type(exc).__name__})"
        )
    # Anything else: the type and a redacted text only.
    return PermanentSendError(
        f"{where}: {type(exc).__name__}: {redact(clean_text(str(exc), 300))}"
    )
