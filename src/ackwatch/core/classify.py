"""Which mail is client mail, which is the agency's, which is auto-generated (DESIGN.md).

Pure functions of a `Message` and the `Config`.

Order of the rules in `classify` (first match wins):

1. ``own``: an ``X-Ackwatch`` header *and* an agency-side sender (ackwatch's nudges). A
   forged X-Ackwatch from outside does not hide client mail.
2. ``client`` (form lead): From is one of ``agency.form_senders`` and a Reply-To is external;
   the Reply-To is the client. Checked before the auto-generated rules because form plugins
   often stamp their mail ``Auto-Submitted``/``Precedence: bulk``; the ops listed the sender
   explicitly. Ignore rules still apply (to the lead's address and the subject). A lead
   matching no client is tracked (client=None) even with ``unknown_senders: ignore``.
   Any other mail from a form sender is ``auto`` (never client mail or an acknowledgement).
3. ``auto``: auto-generated (`auto_generated_reason`); `Classification.out_of_office` tells
   absence notices apart (from an agency-side sender, only a vouched one: `is_vouched`).
   Also mail from a form sender without an external Reply-To.
4. ``ignored``: the ``ignore`` rules (sender globs, subject regexes), for every sender: an
   agency ``noreply@`` system mailing a client is no human acknowledgement either.
5. ``agency``: an agency-side sender that `is_vouched` (a sent-folder copy, or an inbox
   copy a trusted receiving server vouches for). ``other`` with reason
   ``unverified-agency-sender``: an agency-looking inbox copy nobody vouches for; it is
   neither an acknowledgement nor client mail (anyone can write such a From).
6. ``other``: external mail outside an inbox folder (e.g. in Sent).
7. ``client``: external sender in an inbox folder matching a configured client, else per
   ``unknown_senders`` (``track``: client with ``client=None``; ``ignore``: ``ignored``).
   An inbox mail whose From holds no readable mailbox is client mail too (never dropped):
   from its Return-Path, else its first Reply-To, else from nobody (``client_address``
   "", reason ``client-no-sender``; ``unknown_senders`` applies as to any unknown sender).

Who the sender is (`sender_of`): the From's mailbox (`addresses`: the address in the last
``<...>``, never a display name). A From with several mailboxes is from the first
*external* one when it has one, else from the first: a mail that names anyone outside the
agency among its authors is never the agency's word.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from ackwatch.config import Client, Config
from ackwatch.core import provenance
from ackwatch.core.addresses import parse_address_list
from ackwatch.core.message import Address, Message

T = TypeVar("T")

Kind = Literal["client", "agency", "auto", "own", "ignored", "other"]


@dataclass(frozen=True)
class Classification:
    kind: Kind
    reason: str  # short machine-friendly reason, e.g. "auto-submitted", "ignore-sender"
    client_address: str | None = None  # for kind == "client": the client (Reply-To for forms)
    client: Client | None = None  # the configured client it matched, None for unknown senders
    out_of_office: bool = False  # an auto-reply that looks like an absence notice


# Every mail of a first sync is classified: the answers without a part of their own are
# made once (immutable, so shared).
_AGENCY_SENDER = Classification("agency", "agency-sender")
_UNKNOWN_SENDER = Classification("ignored", "unknown-sender")
_UNVERIFIED_AGENCY = Classification("other", "unverified-agency-sender")


# --------------------------------------------------------------------------- memo

_MEMO_SIZE = 65536  # answers kept per config and function (then that memo starts over)


class _ConfigMemo:
    """What is built once per config: the agency addresses and identities, the form
    senders, and the answers of `per_config` functions.

    Classifying tens of thousands of mails asks the same questions about a few hundred
    addresses (agency side? which client? ignored?), each a scan over the config.
    """

    def __init__(self, config: Config) -> None:
        self.agency_addresses = _build_agency_addresses(config)
        self.agency_identities = _build_agency_identities(config)
        self.form_senders = frozenset(f.strip().lower() for f in config.agency.form_senders)
        trust = config.agency.trust
        self.authserv_ids = frozenset(trust.authserv_ids)
        self.relays = provenance.Relays.of(trust.relays)
        self.answers: dict[Callable[..., object], dict[str | None, object]] = {}


_MEMOS: dict[int, tuple[weakref.ref[Config], _ConfigMemo]] = {}


_LAST_MEMO: tuple[Config | None, _ConfigMemo | None] = (None, None)


def _memo(config: Config) -> _ConfigMemo:
    """The memo of ``config``, by identity (a `Config` is immutable; the weak reference
    tells a new config that reuses a dead one's id apart, so nothing leaks across configs).
    The last answer is kept at hand (with its config, so that id cannot be reused): an
    evaluation asks this for every address of every mail, always of one config."""
    global _LAST_MEMO
    last_config, last_memo = _LAST_MEMO
    if last_config is config and last_memo is not None:
        return last_memo
    memo = _memo_of(config)
    _LAST_MEMO = (config, memo)
    return memo


def _memo_of(config: Config) -> _ConfigMemo:
    hit = _MEMOS.get(id(config))
    if hit is not None and hit[0]() is config:
        return hit[1]
    memo = _ConfigMemo(config)
    if len(_MEMOS) > 16:
        _MEMOS.clear()
    _MEMOS[id(config)] = (weakref.ref(config), memo)
    return memo


# Kept: without it a first sync costs +0.6 % instructions with no clients configured, +53 % with 60.
def per_config(compute: Callable[[str, Config], T]) -> Callable[[str, Config], T]:
    """Memoize a pure function of (a string, config) per config and string: an address
    here, a policy name in `sla`."""

    @functools.wraps(compute)
    def remembered(address: str, config: Config) -> T:
        memo = _memo(config).answers
        answers = memo.get(compute)
        if answers is None:
            answers = memo[compute] = {}
        try:
            return answers[address]  # type: ignore[return-value]  # what `compute` gave: a T
        except KeyError:
            pass
        value = compute(address, config)
        if len(answers) >= _MEMO_SIZE:
            answers.clear()
        answers[address] = value
        return value

    return remembered


# --------------------------------------------------------------------------- addresses


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def _domain_matches(domain: str, pattern: str) -> bool:
    """`domain` is `pattern` or one of its subdomains."""
    pattern = pattern.strip().lower().lstrip("@").rstrip(".")
    if pattern.startswith("*."):
        pattern = pattern[2:]
    return bool(pattern) and (domain == pattern or domain.endswith("." + pattern))


@per_config
def is_agency_address(address: str, config: Config) -> bool:
    """Agency side: a domain of ``agency.domains`` (or a subdomain), an address of
    ``agency.addresses``, a watched mailbox's username or owner, or a configured account."""
    address = (address or "").strip().lower()
    if "@" not in address:
        return False
    domain = _domain(address)
    if any(_domain_matches(domain, d) for d in config.agency.domains):
        return True
    return address in _agency_addresses(config)


def _agency_addresses(config: Config) -> frozenset[str]:
    """``agency.addresses``, mailbox usernames and owners, accounts: lower-cased, built once
    per config (a memo of a pure function; classifying a mail asks for it several times,
    and a config may list hundreds of mailboxes)."""
    return _memo(config).agency_addresses


def _build_agency_addresses(config: Config) -> frozenset[str]:
    found = {a.lower() for a in config.agency.addresses}
    for mb in config.mailboxes:
        found.add(mb.username.lower())
        found.add(mb.owner_address)
    found |= {acc.email.lower() for acc in config.accounts}
    return frozenset(found)


def agency_identities(config: Config) -> frozenset[str]:
    """Everything agency-side, for `threads.assign_threads(agency_addresses=...)`.

    Entries with ``@`` are addresses; entries without are domains (subdomains included).
    Built once per config: each evaluation asks twice (0.1 ms each with 20 mailboxes).
    """
    return _memo(config).agency_identities


def _build_agency_identities(config: Config) -> frozenset[str]:
    items: set[str] = {d.strip().lower().lstrip("@") for d in config.agency.domains}
    items |= {a.lower() for a in config.agency.addresses}
    items |= {a.lower() for a in config.agency.form_senders}
    for mb in config.mailboxes:
        items.add(mb.username.lower())
        items.add(mb.owner_address)
    items |= {acc.email.lower() for acc in config.accounts}
    return frozenset(i for i in items if i)


_GLOB_CHARS = frozenset("*?[")


def _match_rank(address: str, entry: str) -> tuple[int, int] | None:
    """How specifically `entry` matches `address`: (tier, length), higher wins; None if not.

    Tiers: 3 exact address, 2 glob (longer literal text wins), 1 domain (longer wins).
    """
    entry = entry.strip().lower()
    if entry.startswith("*.") and "@" not in entry and not _GLOB_CHARS & set(entry[2:]):
        entry = entry[2:]  # "*.acme.example" is the domain rule spelled as a glob
    if not entry:
        return None
    if _GLOB_CHARS & set(entry):
        literal = sum(1 for c in entry if c not in _GLOB_CHARS)
        # "*@acme.*" is matched against the address, "acme.*" against the domain too.
        if fnmatch.fnmatchcase(address, entry) or (
            "@" not in entry and fnmatch.fnmatchcase(_domain(address), entry)
        ):
            return (2, literal)
        return None
    if "@" in entry and not entry.startswith("@"):
        return (3, len(entry)) if address == entry else None
    if _domain_matches(_domain(address), entry):
        return (1, len(entry.lstrip("@")))
    return None


@per_config
def match_client(address: str, config: Config) -> Client | None:
    """The configured client for an address; the most specific entry wins (exact address >
    glob > longest domain), ties go to the client listed first."""
    address = (address or "").strip().lower()
    if "@" not in address:
        return None
    best: tuple[tuple[int, int], int] | None = None
    best_client: Client | None = None
    for index, client in enumerate(config.clients):
        for entry in client.match:
            rank = _match_rank(address, entry)
            if rank is None:
                continue
            candidate = (rank, -index)
            if best is None or candidate > best:
                best, best_client = candidate, client
    return best_client


# --------------------------------------------------------------------------- auto mail

_LEADING_TAGS = re.compile(r"^\s*(?:\[[^\]]{0,40}\]\s*)*")
# Subjects of absence notices / auto-replies, matched at the start (after [TAG]s).
_OOO_SUBJECT = re.compile(
    r"""^(?:
        automatic\ reply | auto[- ]?reply | auto[- ]?response | autoresponse
      | out\ of\ (?:the\ )?office | ooo\b | abwesenheitsnotiz | abwesend\b
      | automatische\ antwort | odpowied[zź]\ automatyczna | automatyczna\ odpowied[zź]
      | nieobecno[sś][cć] | автоматична\ відповідь | автоматический\ ответ
      | автоматичен\ отговор | réponse\ automatique | reponse\ automatique
      | absence\ du\ bureau | respuesta\ automática | respuesta\ automatica
      | fuera\ de\ la\ oficina | risposta\ automatica | fuori\ ufficio
      | automatisch\ antwoord | afwezig\b | automatisk\ svar | automatiskt\ svar
      | fraværende | frånvaro | automaattinen\ vastaus | resposta\ automática
      | resposta\ automatica | automatická\ odpověď | automatická\ odpoveď
      | automatikus\ válasz | otomatik\ yanıt | otomatik\ yanit | răspuns\ automat
      | vacation\ reply | away\ from\ (?:the\ )?office
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_NULL_PATH = re.compile(r"<\s*>")  # a bounce's Return-Path
_FALSE_VALUES = frozenset({"", "no", "false", "0", "off"})
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_DAEMON_LOCALS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})


def _auto_submitted_token(message: Message) -> str | None:
    if message.auto_submitted is None:
        return None
    token = message.auto_submitted.split(";", 1)[0].strip().lower()
    return token or None


@functools.lru_cache(maxsize=4096)
def _ooo_subject(subject: str) -> bool:
    """Whether a subject reads as an out-of-office reply (memoized: a thread's mails share
    their subject, and classifying asks for every mail)."""
    tags = _LEADING_TAGS.match(subject)
    assert tags is not None  # the pattern matches every string, if only the empty start
    return bool(_OOO_SUBJECT.match(subject[tags.end() :]))


def _is_daemon(sender: Address) -> bool:
    if sender.address:
        return sender.address.partition("@")[0] in _DAEMON_LOCALS
    return sender.name.strip().lower() in _DAEMON_LOCALS


def auto_generated_reason(message: Message) -> str | None:
    """Why a message is auto-generated (RFC 3834 and the usual headers), or None.

    ``Auto-Submitted: no`` marks a human sender and overrides the subject heuristic (not the
    explicit headers). ``X-Auto-Response-Suppress`` is deliberately not a signal.
    """
    auto = _auto_submitted_token(message)
    if auto is not None and auto != "no":
        return "auto-submitted"
    if _truthy(message.x_autoreply):
        return "x-autoreply"
    if _truthy(message.x_autorespond):
        return "x-autorespond"
    if (
        message.precedence is not None
        and message.precedence.split(";")[0].strip() in _BULK_PRECEDENCE
    ):
        return "precedence"
    if message.list_id:
        return "list-id"
    if message.list_unsubscribe:
        return "list-unsubscribe"
    if message.return_path is not None and _NULL_PATH.fullmatch(message.return_path.strip()):
        return "null-return-path"
    if _is_daemon(message.sender):
        return "mailer-daemon"
    if auto != "no" and _ooo_subject(message.subject):
        return "auto-reply-subject"
    return None


_NOT_ABSENCE = frozenset({"null-return-path", "mailer-daemon", "list-id", "list-unsubscribe"})


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() not in _FALSE_VALUES


def _out_of_office(message: Message, reason: str | None) -> bool:
    """An auto-reply that reads as an absence notice (bounces and list mail never do)."""
    if reason is None or reason in _NOT_ABSENCE:
        return False
    # Bounces and list mail often say "auto-replied" too; they are no absence notice.
    if _is_daemon(message.sender) or message.list_id or message.list_unsubscribe:
        return False
    if message.return_path is not None and _NULL_PATH.fullmatch(message.return_path.strip()):
        return False
    return (
        _auto_submitted_token(message) == "auto-replied"
        or _truthy(message.x_autoreply)
        or _truthy(message.x_autorespond)
        or _ooo_subject(message.subject)
    )


# --------------------------------------------------------------------------- trust


def sender_of(message: Message, config: Config) -> str:
    """Who ``message`` is from: its From mailbox; of several, the first external one
    (else the first). "" when the From held no readable mailbox."""
    if not message.extra_from:
        return message.sender.address
    authors = (message.sender, *message.extra_from)
    return next(
        (a.address for a in authors if not is_agency_address(a.address, config)),
        message.sender.address,
    )


def is_vouched(message: Message, config: Config) -> bool:
    """Whether an agency-looking ``message`` is the agency's own word (README "What
    counts"): a copy in a watched sent folder (only the account puts mail there); or an
    inbox copy that a trusted receiving server vouches for (`provenance`); or any inbox
    copy with ``agency.trust.inbox_agency_mail: trusted``, or one stored before ackwatch
    fetched the trace headers (`Message.legacy_fetch`: history keeps its trust). A From
    with several mailboxes, or one that could not be read cleanly, is never vouched for
    in an inbox."""
    if message.role == "sent":
        return True
    if config.agency.trust.inbox_agency_mail == "trusted" or message.legacy_fetch:
        return True
    if message.extra_from or "bad-address:from" in message.defects:
        return False
    memo = _memo(config)
    domain = _domain(message.sender.address)
    if memo.authserv_ids and provenance.vouched_by_results(
        message.auth_results, memo.authserv_ids, domain, functools.partial(
            _is_agency_domain, config=config)
    ):
        return True
    return provenance.relayed_from_inside(message.received_hops, memo.relays)


def _is_agency_domain(domain: str, config: Config) -> bool:
    return any(_domain_matches(domain, d) for d in config.agency.domains)


def _recovered_sender(message: Message, config: Config) -> str:
    """A sender for client mail whose From held no readable mailbox: the Return-Path
    (the envelope sender, written by the receiving server), else the first Reply-To;
    only an external address; "" when there is none."""
    candidates = []
    if message.return_path:
        candidates += [a for _, a in parse_address_list(message.return_path).entries]
    candidates += [a.address for a in message.reply_to]
    for address in candidates:
        address = address.strip().lower()
        if "@" in address and not is_agency_address(address, config):
            return address
    return ""


# --------------------------------------------------------------------------- classify


def _ignored(address: str, subject: str, config: Config) -> str | None:
    if _ignored_sender(address, config):
        return "ignore-sender"
    if any(pattern.search(subject) for pattern in config.ignore.subjects):
        return "ignore-subject"
    return None


@per_config
def _ignored_sender(address: str, config: Config) -> bool:
    address = (address or "").lower()
    return bool(address) and any(
        fnmatch.fnmatchcase(address, pattern.strip().lower()) for pattern in config.ignore.senders
    )


def _is_form_sender(address: str, config: Config) -> bool:
    return bool(address) and address in _memo(config).form_senders


def _is_our_from(address: str, config: Config) -> bool:
    """ackwatch's own sender (``smtp.from``), also when it is outside ``agency.domains``."""
    if config.smtp is None or not address:
        return False
    from email.utils import parseaddr

    return address == parseaddr(config.smtp.from_address)[1].strip().lower()


def _client_result(address: str, config: Config, reason: str) -> Classification:
    client = match_client(address, config)
    if client is not None:
        return Classification("client", reason, address, client)
    # Form leads are new prospects by nature: tracked even with unknown_senders: ignore.
    if config.unknown_senders == "ignore" and reason != "form-lead":
        return _UNKNOWN_SENDER
    return Classification("client", f"{reason}-unknown-sender", address)


def classify(message: Message, config: Config) -> Classification:
    sender = sender_of(message, config)
    agency_sender = is_agency_address(sender, config)

    if message.x_ackwatch is not None and (agency_sender or _is_our_from(sender, config)):
        return Classification("own", "x-ackwatch")

    if _is_form_sender(sender, config):
        lead = next(
            (
                a.address
                for a in message.reply_to
                if a.address and not is_agency_address(a.address, config)
            ),
            None,
        )
        if lead is not None and message.role == "inbox":
            ignored = _ignored(lead, message.subject, config) or _ignored(
                sender, message.subject, config
            )
            if ignored:
                return Classification("ignored", ignored)
            return _client_result(lead, config, "form-lead")
        # Form notifications without a lead, and form confirmations sent to the lead,
        # are machine mail: never client mail, never an acknowledgement.
        return Classification("auto", "form-sender")

    reason = auto_generated_reason(message)
    if reason is not None:
        # An absence notice moves nudges to a backup: an agency one must be vouched for.
        absence = _out_of_office(message, reason) and (
            not agency_sender or is_vouched(message, config)
        )
        return Classification("auto", reason, out_of_office=absence)

    ignored = _ignored(sender, message.subject, config)
    if ignored:
        return Classification("ignored", ignored)

    if agency_sender:
        return _AGENCY_SENDER if is_vouched(message, config) else _UNVERIFIED_AGENCY
    if message.role != "inbox":
        return Classification("other", f"external-in-{message.role}")
    if not sender:
        recovered = _recovered_sender(message, config)
        if not recovered:
            if config.unknown_senders == "ignore":
                return _UNKNOWN_SENDER
            return Classification("client", "client-no-sender", "")
        return _client_result(recovered, config, "client-recovered")
    return _client_result(sender, config, "client")


def is_acknowledgement_candidate(message: Message, config: Config) -> bool:
    """From the agency side, human, addressed (To/Cc) to at least one external address."""
    if classify(message, config).kind != "agency":
        return False
    return addressed_outside(message, config)


def addressed_outside(message: Message, config: Config) -> bool:
    """Addressed (To/Cc) to at least one external address: with an ``agency``
    classification, an acknowledgement candidate (for callers that hold the classification)."""
    return any(r.address and not is_agency_address(r.address, config) for r in message.recipients)
