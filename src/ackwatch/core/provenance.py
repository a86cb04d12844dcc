"""Where a mail came from, as the receiving servers recorded it: compact facts of its
``Authentication-Results`` (RFC 8601) and ``Received`` (RFC 5321 §4.4) headers, and the
pure rules that read them (`classify.is_vouched` applies them with the config).

Parsing is lenient, bounded and total: a header that cannot be read gives no fact, and
no fact never vouches for anything. Facts are interned (one relay's hop, one
authserv-id's result recur on thousands of mails), so a stored mailbox's worth of
messages does not carry a copy of each.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TypeVar, cast

MAX_AUTH_HEADERS = 10  # the topmost Authentication-Results headers kept
MAX_RESULTS = 20  # results read from one Authentication-Results header
MAX_HOPS = 20  # the topmost Received headers kept
MAX_TRACE_CHARS = 4000  # of one Authentication-Results / Received value

# RFC 3848 / 6531: the "with" protocols of a submission the receiving server authenticated.
AUTHENTICATED_PROTOCOLS = frozenset(
    {"esmtpa", "esmtpsa", "lmtpa", "lmtpsa", "utf8smtpa", "utf8smtpsa", "utf8lmtpa",
     "utf8lmtpsa"}
)
_KEPT_METHODS = frozenset({"dmarc", "dkim"})


@dataclass(frozen=True, slots=True)
class AuthResult:
    """One ``method=pass`` result of an Authentication-Results header (only DMARC and
    DKIM passes are kept: nothing else can vouch for a sender)."""

    authserv_id: str  # lower-cased
    method: str  # "dmarc" | "dkim"
    header_from: str  # dmarc's header.from domain, lower-cased ("" when not given)
    signing_domain: str  # dkim's header.d (or the domain of header.i), lower-cased


@dataclass(frozen=True, slots=True)
class Hop:
    """The sending side of one ``Received`` header, as the receiving server recorded it.

    ``name`` and ``ip`` come from the TCP-info comment the receiving server wrote
    (``from helo (name [ip])``), not from the HELO name the sender chose; without such a
    comment (or with Exim's ``from [ip] (helo=name)``), from the ``from`` word itself. ``has_from`` is False for a hop without a
    ``from`` clause (a local pickup): it tells nothing about the mail's origin.
    ``protocol`` is the lower-cased ``with`` word (``esmtps``, ``esmtpsa``, ``lmtp``).
    """

    has_from: bool
    name: str
    ip: str
    protocol: str


# A hop that stands for "more Received headers than were kept": never a relay.
UNKNOWN_HOP = Hop(True, "", "", "")

_COMMENT = re.compile(r"\([^()]*\)")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_EQUALS = re.compile(r"\s*=\s*")
_IP_LITERAL = re.compile(r"\[(?:ipv6:)?([0-9a-f:.]+)\]", re.IGNORECASE)
_WORD = re.compile(r"\(|[^\s()]+")
_INTERNED: dict[object, object] = {}
_H = TypeVar("_H", bound=Hashable)
_INTERN_MAX = 50_000


def _intern(value: _H) -> _H:
    hit = _INTERNED.get(value)
    if hit is None:
        if len(_INTERNED) >= _INTERN_MAX:
            _INTERNED.clear()
        _INTERNED[value] = hit = value
    return cast(_H, hit)  # stored under itself: an equal value of the same type


def _strip_comments(value: str) -> str:
    """Without ``(...)`` comments, innermost first, a bounded number of rounds."""
    for _ in range(8):
        stripped = _COMMENT.sub(" ", value)
        if stripped == value:
            break
        value = stripped
    return value.replace("(", " ").replace(")", " ")


def _domain_of(value: str) -> str:
    return value.rpartition("@")[2].strip().strip(".").lower()


def parse_auth_results(value: str) -> tuple[str, tuple[AuthResult, ...]]:
    """The authserv-id and the DMARC and DKIM passes of one Authentication-Results value
    (RFC 8601): ``authserv-id [version]; method=result ptype.property=value ...; ...``.
    A value that starts with a result (Microsoft 365 writes no authserv-id) has the id
    "", which no config can trust."""
    value = _QUOTED.sub(lambda m: m.group(1).replace(";", " ").replace(" ", ""),
                        _strip_comments(value[:MAX_TRACE_CHARS]))
    parts = value.split(";")
    head = parts[0].split()
    if not head:
        return "", ()
    if "=" in head[0]:
        authserv_id = ""
    else:
        authserv_id = head[0].lower()
        parts = parts[1:]
    out: list[AuthResult] = []
    for part in parts[:MAX_RESULTS]:
        words = _EQUALS.sub("=", part.strip()).split()
        if not words or "=" not in words[0]:
            continue
        method, _, result = words[0].lower().partition("=")
        method = method.partition("/")[0]
        if method not in _KEPT_METHODS or result != "pass":
            continue
        props: dict[str, str] = {}
        for word in words[1:]:
            key, sep, val = word.partition("=")
            if sep:
                props.setdefault(key.lower(), val)
        header_from = _domain_of(props.get("header.from", ""))
        signing = props.get("header.d", "") or props.get("header.i", "")
        fact = AuthResult(authserv_id, method, header_from, _domain_of(signing))
        out.append(_intern(fact))
    return authserv_id, tuple(out)


def _ip(text: str) -> str:
    """A valid IP address as written (compressed, lower-case), or ""."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return ""


def _tcp_info(comment: str) -> tuple[str, str]:
    """(name, ip) from a TCP-info comment: ``name [ip]``, ``[ip] helo=x``, ``ip``."""
    ip = ""
    literal = _IP_LITERAL.search(comment)
    if literal is not None:
        ip = _ip(literal.group(1))
    name = ""
    for word in _IP_LITERAL.sub(" ", comment).split():
        word = word.strip(".,;").lower()
        if not word or "=" in word or word == "unknown":
            continue
        if _ip(word):
            ip = ip or _ip(word)
            continue
        if "." in word and "@" not in word and not name:
            name = word
    return name, ip


def parse_received(value: str) -> Hop:
    """The sending side and protocol of one Received value (see `Hop`)."""
    value = value[:MAX_TRACE_CHARS]
    semicolon = value.rfind(";")
    if semicolon >= 0:
        value = value[:semicolon]  # the date
    clause = ""
    from_word = ""
    from_comment: str | None = None
    protocol = ""
    has_from = False
    i = 0
    while True:
        m = _WORD.search(value, i)
        if m is None:
            break
        if m.group() == "(":
            close = value.find(")", m.start())
            text = value[m.start() + 1 : close if close >= 0 else len(value)]
            if clause == "from" and from_comment is None:
                from_comment = text
            i = close + 1 if close >= 0 else len(value)
            continue
        word = m.group()
        i = m.end()
        lowered = word.lower()
        if lowered in ("from", "by", "via", "with", "id", "for"):
            clause = lowered
            has_from |= lowered == "from"
            continue
        if clause == "from" and not from_word:
            from_word = word
        elif clause == "with" and not protocol:
            protocol = lowered
    name, ip = _tcp_info(from_comment) if from_comment is not None else ("", "")
    literal = _IP_LITERAL.fullmatch(from_word)
    if from_comment is None or (not name and not ip and literal is not None):
        # No TCP-info (Exchange), or Exim's "from [ip] (helo=name)": there the word
        # after "from" is what the server saw.
        ip = _ip(literal.group(1)) if literal is not None else _ip(from_word)
        name = "" if ip or from_comment is not None else from_word.strip(".").lower()
    hop = Hop(has_from, _intern(name), _intern(ip), _intern(protocol))
    return _intern(hop)


def auth_results_of(joined: str | None) -> tuple[AuthResult, ...]:
    """The kept results of a mail's Authentication-Results headers (their values joined
    with "\n", topmost first): of each authserv-id, its topmost header's only (what lies
    below it was there when that server received the mail: anyone could have written it)."""
    if not joined:
        return ()
    if "\n" not in joined:
        return parse_auth_results(joined)[1]
    seen: set[str] = set()
    out: list[AuthResult] = []
    for value in joined.split("\n"):
        authserv_id, results = parse_auth_results(value)
        if authserv_id not in seen:
            seen.add(authserv_id)
            out += results
    return tuple(out)


def hops_of(joined: str | None, defects: set[str]) -> tuple[Hop, ...]:
    """The hops of a mail's Received headers (values joined with "\n", topmost first);
    more than `MAX_HOPS` end with `UNKNOWN_HOP` (defect "too-many-received"), which no
    relay passes."""
    if joined is None:
        return ()
    values = joined.split("\n")
    hops = [parse_received(v) for v in values[:MAX_HOPS]]
    if len(values) > MAX_HOPS:
        defects.add("too-many-received")
        hops.append(UNKNOWN_HOP)
    return tuple(hops)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Relays:
    """The agency's own relays: host names (``*.example`` for every host under a
    domain) and IP networks (an address is a /32 or /128)."""

    names: frozenset[str]
    suffixes: tuple[str, ...]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def of(cls, entries: Iterable[str]) -> Relays:
        names: set[str] = set()
        suffixes: list[str] = []
        networks = []
        for entry in entries:
            entry = entry.strip().lower().rstrip(".")
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                suffixes.append(entry[1:])
            elif entry:
                names.add(entry)
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.names or self.suffixes or self.networks)

    def holds(self, hop: Hop) -> bool:
        """Whether the hop's sending side is one of the relays."""
        if hop.ip:
            address = ipaddress.ip_address(hop.ip)
            if any(address in net for net in self.networks):
                return True
        name = hop.name
        return bool(name) and (name in self.names or name.endswith(self.suffixes))


def relayed_from_inside(hops: tuple[Hop, ...], relays: Relays) -> bool:
    """Whether the ``Received`` chain (topmost first) shows a mail that never came from
    outside the agency's relays.

    Read from the top (the hop the final server added, which no sender can forge) down:
    a hop whose sending side is a relay was added by a relay, so the next hop down can
    be believed; a hop without ``from`` (a local pickup) is passed over. The chain is
    inside when it ends (every hop was a relay's) or reaches an authenticated submission
    (``with ESMTPSA`` and the like: one of the agency's servers checked the account's
    password); the first other hop from anywhere else makes it outside: what lies below it is the sender's to write. No hop at all is
    outside too (a delivered mail always has one).
    """
    if not hops or not relays:
        return False
    relay_seen = False
    for hop in hops:  # every hop reached here was written by one of the agency's servers
        if not hop.has_from:
            continue
        if relays.holds(hop):
            relay_seen = True
            continue
        return hop.protocol in AUTHENTICATED_PROTOCOLS
    return relay_seen


def vouched_by_results(
    results: tuple[AuthResult, ...],
    authserv_ids: frozenset[str],
    sender_domain: str,
    is_agency_domain: Callable[[str], bool],
) -> bool:
    """Whether a trusted receiving server's Authentication-Results vouch for a sender of
    ``sender_domain``: ``dmarc=pass`` for that domain (header.from, when given, must be
    it), or ``dkim=pass`` signed by an agency domain aligned with it (the same domain, or
    one a subdomain of the other). Results of any other authserv-id are ignored, and
    ``results`` hold only the topmost header of each id (`auth_results_of`): a
    receiving server writes its header above whatever the sender wrote, so a forged
    header with a trusted id lies below the real one even where the border server does
    not remove it (as RFC 8601 §5 asks)."""
    if not sender_domain:
        return False
    for r in results:
        if r.authserv_id not in authserv_ids:
            continue
        if r.method == "dmarc" and r.header_from in ("", sender_domain):
            return True
        d = r.signing_domain
        if r.method == "dkim" and d and is_agency_domain(d) and (
            d == sender_domain or sender_domain.endswith("." + d) or d.endswith("." + sender_domain)
        ):
            return True
    return False
