"""Mails ackwatch sends (nudges, escalations, summaries, promises): composing them.

`render(notice, ...)` turns a `Notice` (who, what, in which language and timezone) into
a multipart/alternative `EmailMessage` from the template files (`ackwatch.mail.templates`).
Pure apart from reading those files: ``now`` is a field of the notice, nothing reads the
clock. `ackwatch.mail.smtp` sends what this builds.

Everything client-supplied (subjects, names, addresses, message ids) is untrusted: it is
HTML-escaped in the HTML part, and stripped of control and bidi-override characters and
capped in length everywhere, so it can neither inject markup nor headers nor disguise
itself.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from ackwatch.mail.templates import (
    RENDERABLE_KINDS,
    Formatter,
    TemplateCache,
    Templates,
    fill,
    plural,
    resolve_language,
)

if TYPE_CHECKING:
    from ackwatch.config import Config

log = structlog.get_logger(__name__)

__all__ = [
    "ADDRESS_LIMIT",
    "MAIL_SUBJECT_LIMIT",
    "NAME_LIMIT",
    "SUBJECT_LIMIT",
    "Notice",
    "NoticeKind",
    "NoticeLine",
    "account_display_name",
    "clean_text",
    "make_message_id",
    "message_id_domain",
    "render",
    "render_outbox",
    "render_queued",
    "templates_of",
]

NoticeKind = Literal[
    "nudge", "escalation", "summary", "digest", "promise", "promise-overdue", "ask-date"
]
KINDS = (*RENDERABLE_KINDS, "digest")

SUBJECT_LIMIT = 200  # client subjects, in characters, ellipsis included
NAME_LIMIT = 100  # client / account display names
ADDRESS_LIMIT = 254
MAIL_SUBJECT_LIMIT = 250  # our own Subject header
ITEMS_HEADER_LIMIT = 2000  # X-Ackwatch-Items is omitted when longer than this
MESSAGE_ID_LIMIT = 250


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
    # Promise notices: the sentence that promised; `deadline` is the promised
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


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown_timezone", timezone=clean_text(name, 64), fallback="UTC")
        return dt.UTC


# --------------------------------------------------------------------------- render

# Every kind shares `layout.txt|html`; a `<kind>.txt|html` (an ops override) wins over it.
# An overdue promise is listed as in the promise reminder: its item template is shared.
_ITEM_TEMPLATE_OF = {"promise-overdue": "promise"}


def render(
    notice: Notice,
    *,
    smtp_from: str,
    templates_dir: Path | None = None,
    message_id_domain: str | None = None,
    message_id: str | None = None,
    cache: TemplateCache | None = None,
) -> EmailMessage:
    """The mail for ``notice``: multipart/alternative (plain text + HTML).

    ``smtp_from`` is the full From header (``SmtpConfig.from_address``).
    ``message_id_domain`` defaults to the domain of ``smtp_from``. Pass ``message_id``
    (from `make_message_id`) to keep the id the outbox recorded when re-rendering.
    ``cache`` (of ``templates_dir``): the files as read before, instead of reading them.
    """
    if notice.kind not in RENDERABLE_KINDS:
        raise NotImplementedError(f"rendering {notice.kind!r} mails is not implemented")
    if not notice.lines:
        raise ValueError("a notice needs at least one line")

    if cache is not None:
        language = cache.language(notice.language)
        templates = cache.templates(language)
    else:
        language = resolve_language(notice.language, templates_dir)
        templates = Templates(templates_dir, language)
    strings = templates.strings()
    tz = _zone(notice.timezone)
    fmt = Formatter(strings, tz, notice.now)
    kind_strings: Mapping[str, str] = strings.get(notice.kind, {})

    lines = sorted(notice.lines, key=lambda ln: (ln.deadline, ln.received))
    count = len(lines)
    emails = plural(strings.get("emails", {"other": "$n"}), language, count)
    first_due = fmt.short(lines[0].deadline)
    overdue_count = sum(1 for ln in lines if ln.overdue(notice.now))
    recipient_name = clean_text(notice.recipient_name, NAME_LIMIT)
    account_name = clean_text(notice.account_name or notice.account or "", NAME_LIMIT)
    tz_name = getattr(tz, "key", "UTC")

    subject_vars = {"emails": emails, "n": str(count), "first_due": first_due,
                    "account": account_name, "overdue": str(overdue_count),
                    "promises": plural(strings.get("promises", {"other": "$n"}), language, count),
                    "client": clean_text(lines[0].client, NAME_LIMIT)}
    subject_template = kind_strings.get("subject", "ackwatch: $emails")
    if count == 1 and "subject_single" in kind_strings:
        subject_template = kind_strings["subject_single"]
    mail_subject = clean_text(fill(subject_template, subject_vars), MAIL_SUBJECT_LIMIT)

    labels = {f"label_{k}": str(v) for k, v in strings.get("labels", {}).items()}
    text_vars: dict[str, str] = {
        **labels,
        "mail_subject": mail_subject,
        "greeting": fill(strings.get("greeting", ""), {"name": recipient_name}),
        "intro": fill(kind_strings.get("intro", ""), subject_vars),
        "footer": fill(kind_strings.get("footer", ""), subject_vars),
        "times_note": fill(strings.get("times_note", ""), {"timezone": tz_name}),
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

    kind, item_kind = notice.kind, _ITEM_TEMPLATE_OF.get(notice.kind, notice.kind)
    item_txt = templates.find(f"{kind}_item.txt", f"{item_kind}_item.txt", "item.txt")
    item_html = templates.find(f"{kind}_item.html", f"{item_kind}_item.html", "item.html")
    items_txt: list[str] = []
    items_html: list[str] = []
    for line in lines:
        values = _line_values(line, fmt, labels, default_account=account_name or recipient_name)
        items_txt.append(fill(item_txt, values))
        items_html.append(fill(item_html, _escaped(values)))

    text = fill(
        templates.find(f"{kind}.txt", "layout.txt"), {**text_vars, "items": "".join(items_txt)}
    )
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    body_html = fill(
        templates.find(f"{kind}.html", "layout.html"),
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
    @property
    def kind(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def cc(self) -> tuple[str, ...]: ...
    @property
    def account(self) -> str | None: ...
    @property
    def escalation_keys(self) -> tuple[str, ...]: ...
    @property
    def message_id(self) -> str: ...


class _ItemLike(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def client_address(self) -> str: ...
    @property
    def client(self) -> str | None: ...
    @property
    def subject(self) -> str: ...
    @property
    def received(self) -> dt.datetime: ...
    @property
    def deadline(self) -> dt.datetime: ...
    @property
    def mailboxes(self) -> tuple[str, ...]: ...
    @property
    def account(self) -> str | None: ...


def render_outbox(
    config: Config, record: _OutboxLike, items: Iterable[_ItemLike], now: dt.datetime
) -> EmailMessage:
    """Render a queued nudge, escalation or summary (`store.OutboxRecord` + its
    `store.ItemRecord`s), as `render_queued` says."""
    escalations = set(record.escalation_keys)

    def name_of(address: str | None) -> str | None:
        return account_display_name(config, address)

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
    return render_queued(config, record, lines, now, account_name=name_of(record.account))


def account_display_name(config: Config, address: str | None) -> str | None:
    """What a mail calls an account: its configured name, else its address."""
    acc = config.account(address)
    return acc.name if acc and acc.name else address


def render_queued(
    config: Config,
    record: _OutboxLike,
    lines: tuple[NoticeLine, ...],
    now: dt.datetime,
    *,
    account_name: str | None,
) -> EmailMessage:
    """Render a mail the outbox recorded, listing ``lines``.

    Language and timezone are the recipient's (account settings and calendar); a manager
    who is not an account gets the language of the account the mail is about, and the
    config's timezone. The Message-ID is the one the outbox recorded.
    """
    if config.smtp is None:
        raise ValueError("no smtp section in the config")
    recipient = config.account(record.recipient)
    who = recipient or config.account(record.account)
    calendar = config.calendar_for_account(record.recipient) if recipient else None
    notice = Notice(
        kind=record.kind,  # type: ignore[arg-type]  # a stored str; Notice checks it
        to=record.recipient,
        cc=tuple(record.cc),
        lines=lines,
        now=now,
        language=who.language if who else "en",
        timezone=calendar.timezone if calendar else config.timezone,
        recipient_name=recipient.name if recipient else None,
        account=record.account,
        account_name=account_name,
    )
    return render(
        notice,
        smtp_from=config.smtp.from_address,
        templates_dir=config.notify.templates_dir,
        message_id=record.message_id,
        cache=templates_of(config),
    )


_templates_of_config: tuple[weakref.ref[Config], TemplateCache] | None = None


def templates_of(config: Config) -> TemplateCache:
    """The template files of ``config``, read once per loaded config (a SIGHUP's new
    config reads them again: an edited override applies from then on)."""
    global _templates_of_config
    last = _templates_of_config
    if last is not None and last[0]() is config:
        return last[1]
    cache = TemplateCache(config.notify.templates_dir)
    _templates_of_config = (weakref.ref(config), cache)
    return cache


def _line_values(
    line: NoticeLine, fmt: Formatter, labels: Mapping[str, str], *, default_account: str
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

