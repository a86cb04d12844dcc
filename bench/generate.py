"""Fill Dovecot Maildirs fast, by writing the Maildir files directly (bench data only).

Dovecot indexes a Maildir on first access, so no dovecot-uidlist is written: files go to
``cur/`` with proper Maildir names (``<secs>.M<usecs>P<n>.bench,S=<size>:2,<flags>``)
and their mtime set to the INTERNALDATE Dovecot will report. Header shapes are the ones
agencies see: client threads with replies in Sent (In-Reply-To/References, Outlook
Thread-Index), CCs to colleagues, newsletters (List-Id, List-Unsubscribe, Precedence),
auto-replies (Auto-Submitted, X-Autoreply), RFC 2047 encoded subjects in several
languages, internal mail. Everything is deterministic from a seed.

Also usable alone::

    .venv/bin/python bench/generate.py DIR --inbox 10000 --window 2000 --seed 1
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import Header
from email.utils import format_datetime
from pathlib import Path

AGENCY = "agency.example"
CLIENT_DOMAINS = [f"client{i:02d}.example" for i in range(40)] + [
    "gmail.example", "acme.example", "globex.example", "initech.example",
]
FIRST = ["jan", "anna", "eva", "piotr", "olena", "ivan", "maria", "tom", "lisa", "kasia",
         "marek", "sofia", "dmytro", "georgi", "petra", "lukas", "nina", "oskar"]
SUBJECTS = [
    "Quote for the spring campaign", "Banner sizes for the launch", "Invoice question",
    "Brief: new product page", "Meeting on Thursday?", "Logo files", "Press release draft",
    "Budget for Q3", "Feedback on the mockups", "Newsletter copy", "Urgent: typo on site",
]
ENCODED = [  # (text, charset): encoded as RFC 2047 by email.header
    ("Wycena kampanii wiosennej – pilne", "utf-8"),
    ("Zażółć gęślą jaźń: poprawki", "utf-8"),
    ("Пропозиція щодо банерів", "utf-8"),
    ("Предложение за рекламна кампания", "utf-8"),
    ("Änderungen an der Präsentation", "iso-8859-1"),
]
REPLY_PREFIX = ["Re: ", "RE: ", "AW: ", "Odp: ", "Відп: ", "SV: "]
BODY = b"Hello,\r\n\r\nplease see the details below.\r\n\r\nBest regards\r\n"


@dataclass(frozen=True)
class Mail:
    folder: str  # "INBOX" or "Sent"
    received: dt.datetime
    raw: bytes
    flags: str = ""  # Maildir info flags, e.g. "S" (seen), "RS" (answered+seen)


def _subject(rng: random.Random) -> str:
    if rng.random() < 0.2:
        text, cs = rng.choice(ENCODED)
        return Header(text, cs).encode()
    return rng.choice(SUBJECTS) + f" #{rng.randint(1, 9999)}"


def _thread_index(rng: random.Random, depth: int) -> str:
    raw = bytes(rng.getrandbits(8) for _ in range(22 + 5 * depth))
    return base64.b64encode(raw).decode()


def _headers(fields: list[tuple[str, str]]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in fields).encode("utf-8") + b"\r\n"


def mailbox_mails(
    *,
    owner: str,
    inbox: int,
    window: int,
    now: dt.datetime,
    seed: int,
    window_days: float = 6.5,
    history_days: float = 365,
    answered_old: float = 0.998,
    answered_recent: float = 0.9,
    colleagues: tuple[str, ...] = (),
    agency_share: float | None = None,
) -> Iterator[Mail]:
    """`inbox` INBOX messages, `window` of them within the last `window_days`; Sent gets
    replies to client mail: `answered_old` of the mail older than two weeks is answered (an
    agency's history is settled), `answered_recent` of the rest, 5 minutes to 3 hours
    later (a reply that would be in the future is not there yet).

    `agency_share` (the "unanswered" shape): that share of the mail is agency mail that
    is not a reply (`_agency_mail`: internal mail, or a colleague writing to a client
    with the owner in Cc) and the rest client mail: no newsletters, no auto-replies."""
    rng = random.Random(f"{seed}:{owner}")
    colleagues = colleagues or tuple(f"{n}@{AGENCY}" for n in ("piotr", "kasia", "marek"))
    recent_start = now - dt.timedelta(days=window_days)
    old_end = now - dt.timedelta(days=window_days + 2)
    old_start = now - dt.timedelta(days=history_days)
    for i in range(inbox):
        if i < inbox - window:  # old mail, before the backfill window (+ a day's margin)
            span = (old_end - old_start).total_seconds()
            received = old_start + dt.timedelta(seconds=span * i / max(1, inbox - window))
        else:
            j = i - (inbox - window)
            span = (now - dt.timedelta(minutes=10) - recent_start).total_seconds()
            received = recent_start + dt.timedelta(seconds=span * j / max(1, window))
        received = received.replace(microsecond=0)
        date = format_datetime(received - dt.timedelta(seconds=rng.randint(1, 90)))
        kind = rng.random()
        mid = f"<{seed}.{i}.{rng.getrandbits(32):08x}@"
        if agency_share is not None:  # only agency and client mail: see the docstring
            if kind < agency_share:
                yield _agency_mail(rng, owner, colleagues, date, received, mid)
                continue
            kind = 1.0
        if kind < 0.12:  # newsletter
            dom = rng.choice(["news.example", "shop.example", "list.example"])
            yield Mail("INBOX", received, _headers([
                ("Return-Path", f"<bounce-{i}@{dom}>"), ("From", f"News <news@{dom}>"),
                ("To", owner), ("Subject", _subject(rng)), ("Date", date),
                ("Message-ID", mid + dom + ">"), ("List-Id", f"<weekly.{dom}>"),
                ("List-Unsubscribe", f"<mailto:unsub@{dom}>"), ("Precedence", "bulk"),
                ("Content-Type", "text/plain; charset=utf-8"),
            ]) + BODY, "S")
            continue
        if kind < 0.17:  # a client's auto-reply
            dom = rng.choice(CLIENT_DOMAINS)
            yield Mail("INBOX", received, _headers([
                ("Return-Path", f"<ooo@{dom}>"), ("From", f"ooo@{dom}"), ("To", owner),
                ("Subject", "Automatic reply: " + rng.choice(SUBJECTS)), ("Date", date),
                ("Message-ID", mid + dom + ">"), ("Auto-Submitted", "auto-replied"),
                ("X-Autoreply", "yes"),
            ]) + BODY, "S")
            continue
        if kind < 0.25:  # internal mail from a colleague
            yield Mail("INBOX", received, _headers([
                ("From", rng.choice(colleagues)), ("To", owner), ("Subject", _subject(rng)),
                ("Date", date), ("Message-ID", mid + AGENCY + ">"),
            ]) + BODY, "S")
            continue
        # a client mail, maybe a follow-up in a thread, maybe CC'd to a colleague
        dom = rng.choice(CLIENT_DOMAINS)
        client = f"{rng.choice(FIRST)}@{dom}"
        subject = _subject(rng)
        fields = [
            ("Return-Path", f"<{client}>"),
            ("From", f"{client.split('@')[0].title()} <{client}>"),
            ("To", owner), ("Subject", subject), ("Date", date),
            ("Message-ID", mid + dom + ">"),
            ("Content-Type", "text/plain; charset=utf-8"),
        ]
        if rng.random() < 0.3:
            fields.append(("Cc", ", ".join(rng.sample(colleagues, 1))))
        if rng.random() < 0.25:
            parent = f"<{seed}.p{i}@{dom}>"
            fields.append(("In-Reply-To", parent))
            fields.append(("References", f"<{seed}.r{i}@{AGENCY}> {parent}"))
            fields[3] = ("Subject", rng.choice(REPLY_PREFIX) + subject)
        if rng.random() < 0.2:
            fields.append(("Thread-Index", _thread_index(rng, 0)))
        rate = answered_old if received < now - dt.timedelta(days=14) else answered_recent
        reply_at = received + dt.timedelta(minutes=rng.randint(5, 180))
        answered = rng.random() < rate and reply_at < now
        yield Mail("INBOX", received, _headers(fields) + BODY, "RS" if answered else "S")
        if answered:
            yield Mail("Sent", reply_at, _headers([
                ("From", owner), ("To", client), ("Subject", "Re: " + subject),
                ("Date", format_datetime(reply_at)),
                ("Message-ID", f"<{seed}.s{i}.{owner.split('@')[0]}@{AGENCY}>"),
                ("In-Reply-To", mid + dom + ">"), ("References", mid + dom + ">"),
            ]) + BODY, "S")


def _agency_mail(
    rng: random.Random, owner: str, colleagues: tuple[str, ...], date: str,
    received: dt.datetime, mid: str,
) -> Mail:
    """Agency mail that is not a reply, in the owner's INBOX: half of it internal (a
    colleague to the owner), half outbound (a colleague writing to a client, the owner in
    Cc: agency mail addressed outside, which the rules look at as a possible reply)."""
    sender = rng.choice(colleagues)
    fields = [("From", sender), ("To", owner), ("Subject", _subject(rng)), ("Date", date),
              ("Message-ID", mid + AGENCY + ">")]
    if rng.random() < 0.5:
        client = f"{rng.choice(FIRST)}@{rng.choice(CLIENT_DOMAINS)}"
        fields[1] = ("To", client)
        fields.insert(2, ("Cc", owner))
    if rng.random() < 0.2:
        fields.append(("Thread-Index", _thread_index(rng, 0)))
    return Mail("INBOX", received, _headers(fields) + BODY, "S")


class MaildirWriter:
    """Writes mails as Maildir++ files: INBOX at the root, "Sent" in ``.Sent``."""

    def __init__(self, root: Path):
        self.root = root
        self.counter = 0
        self.dirs: dict[str, Path] = {}

    def _dir(self, folder: str) -> Path:
        d = self.dirs.get(folder)
        if d is None:
            d = self.root if folder == "INBOX" else self.root / f".{folder}"
            for sub in ("cur", "new", "tmp"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            if folder != "INBOX":
                (d / "maildirfolder").touch()
            self.dirs[folder] = d
        return d

    def write(self, mail: Mail) -> None:
        self.counter += 1
        ts = mail.received.timestamp()
        name = f"{int(ts)}.M{self.counter}P1.bench,S={len(mail.raw)}:2,{mail.flags}"
        path = self._dir(mail.folder) / "cur" / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, mail.raw)
            os.utime(fd, (ts, ts))
        finally:
            os.close(fd)


def chown_tree(root: Path, uid: int, gid: int) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, gid)
        for n in filenames:
            os.chown(os.path.join(dirpath, n), uid, gid)


def fill_user(
    root: Path, *, owner: str, inbox: int, window: int, now: dt.datetime, seed: int,
    uid_gid: tuple[int, int] | None = None, **kw: object,
) -> dict[str, int]:
    """(Re)create one user's Maildir; returns counts per folder."""
    if root.exists():
        shutil.rmtree(root)
    w = MaildirWriter(root)
    w._dir("INBOX")
    w._dir("Sent")
    counts = {"INBOX": 0, "Sent": 0}
    for mail in mailbox_mails(owner=owner, inbox=inbox, window=window, now=now, seed=seed,
                              **kw):  # type: ignore[arg-type]
        w.write(mail)
        counts[mail.folder] += 1
    if uid_gid is not None:
        chown_tree(root, *uid_gid)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="the user's Maildir root (INBOX)")
    ap.add_argument("--inbox", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=2_000, help="how many in the last 6.5 days")
    ap.add_argument("--owner", default=f"anna@{AGENCY}")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t = time.monotonic()
    counts = fill_user(a.dir, owner=a.owner, inbox=a.inbox, window=a.window,
                       now=dt.datetime.now(dt.UTC), seed=a.seed)
    print(f"{counts} in {time.monotonic() - t:.1f}s")


if __name__ == "__main__":
    main()
