"""The lean FETCH reader (`imapfetch.read_answer`) against imaplib's own loop, on real servers.

Every scenario runs on two connections of the same user that issue the same commands in
the same order: one reads the answer the way ackwatch did before (imaplib's
``_command_complete`` + ``_untagged_response``, `_old_raw_uid_fetch` below), the other
through `uidfetch._raw_uid_fetch`. The FETCH data, the exception (type and message), what is
left in imaplib's ``untagged_responses`` and the state of the connection afterwards must
be the same. Changes made to the mailbox between the commands come from a third, admin
session (`ImapTestServer.append` / `add_flags` / `expunge`), never from the code tested.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.imapclient import seq_to_parenstr_upper
from tests.faults.proxy import FaultProxy
from tests.servers.dovecot import DovecotServer
from tests.servers.imapserver import ImapTestServer, make_message

from ackwatch.config import MailboxConfig
from ackwatch.mail import imapfetch, uidfetch
from ackwatch.mail.connection import connect, logout
from ackwatch.mail.idle import take_unsolicited
from ackwatch.mail.sync import sync_folder
from ackwatch.mail.uidfetch import (
    _parse_by_uid,
    _raw_uid_fetch,
    fetch_items,
    fetch_new,
    to_message,
    uid_set,
)

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SINCE = (NOW - dt.timedelta(days=7)).date()
BODY = ["UID", "FLAGS", "INTERNALDATE", "BODY.PEEK[]"]


# ---------------------------------------------------------------------------- reference


def _old_raw_uid_fetch(
    client: IMAPClient, msgset: str, items: list[str], modifiers: list[str] | None = None
) -> list[Any]:
    """`_raw_uid_fetch` as it was: imaplib reads the answer."""
    args = ["FETCH", msgset.encode("ascii"), seq_to_parenstr_upper(items)]
    if modifiers:
        args.append(seq_to_parenstr_upper(modifiers))
    imap = client._imap
    imap.untagged_responses.pop("FETCH", None)
    tag = imap._command("UID", *args)
    typ, data = imap._command_complete("FETCH", tag)
    client._checkok("fetch", typ, data)
    typ, data = imap._untagged_response(typ, data, "FETCH")
    return [d for d in data if d is not None]


def _old_fetch_new(client: IMAPClient, uids: list[int], batch: int, items: list[str]) -> list:
    """`_fetch_new` as it was (no pipelining), on top of `_old_raw_uid_fetch`."""
    out = []
    ordered = sorted(set(uids))
    for i in range(0, len(ordered), batch):
        part = ordered[i : i + batch]
        answer = _parse_by_uid(_old_raw_uid_fetch(client, uid_set(part), items))
        out += [to_message(u, answer[u]) for u in sorted(answer) if u in set(part)]
    return [m for m in out if m is not None]


_SECS = re.compile(rb"\(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)")


def _scrub(value: Any) -> Any:
    """Dovecot's per-command timings ("(0.001 + 0.000 secs)") differ between sessions."""
    if isinstance(value, bytes):
        return _SECS.sub(b"(secs)", value)
    if isinstance(value, str):
        return _SECS.sub(b"(secs)", value.encode()).decode()
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v) for v in value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def _outcome(fetch: Callable[..., Any], client: IMAPClient, *args: Any) -> dict[str, Any]:
    try:
        result: Any = ("ok", fetch(client, *args))
    except Exception as exc:
        result = ("raised", type(exc), _scrub(str(exc)))
    imap = client._imap
    return {
        "result": _scrub(result),
        "untagged": _scrub({k: list(v) for k, v in imap.untagged_responses.items()}),
        "in_flight": sorted(v for v in imap.tagged_commands.values() if v is not None),
        "unanswered": sum(v is None for v in imap.tagged_commands.values()),
        "state": imap.state,
    }


def _same(old: IMAPClient, new: IMAPClient, *args: Any) -> dict[str, Any]:
    """Run one UID FETCH both ways; assert the same outcome; return it."""
    theirs = _outcome(_old_raw_uid_fetch, old, *args)
    ours = _outcome(_raw_uid_fetch, new, *args)
    assert ours == theirs
    return ours


def _both(pair: tuple[IMAPClient, IMAPClient], step: Callable[[IMAPClient], Any]) -> None:
    for c in pair:
        step(c)


def _fetched_text(outcome: dict[str, Any]) -> bytes:
    kind, data = outcome["result"][:2]
    assert kind == "ok", outcome
    return b"".join(p if isinstance(p, bytes) else b"".join(p) for p in data)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def pair(mailbox_config: MailboxConfig, resolve) -> Iterator[tuple[IMAPClient, IMAPClient]]:
    """(old-way client, new-way client): two sessions of the same fresh user."""
    clients = [connect(mailbox_config, resolve=resolve) for _ in range(2)]
    try:
        yield clients[0], clients[1]
    finally:
        for c in clients:
            logout(c)


def _append(server: ImapTestServer, user: str, folder: str = "INBOX", **kw: Any) -> int:
    return server.append(user, folder, make_message(**kw), internaldate=NOW)


def _decoy_body(pair: tuple[IMAPClient, IMAPClient]) -> str:
    """Lines that would end or derail a reader that looked into literals: the next tags
    of both sessions completing, untagged responses, a literal announcement."""
    lines = []
    for c in pair:
        imap = c._imap
        prefix = imap.tagpre.decode()
        for n in range(imap.tagnum, imap.tagnum + 30):
            lines += [f"{prefix}{n} OK FETCH completed", f"{prefix}{n} BAD oops"]
    lines += ["* BYE server going down", "* 3 EXISTS", "* 1 EXPUNGE", ")", "tail {5}",
              "* 2 FETCH (UID 2 BODY[] {3}", "abc)"]  # fmt: skip
    return "\r\n".join(lines) + "\r\n"


# ---------------------------------------------------------------------------- tests


def test_literals_that_look_like_responses(imap_server, imap_user, pair):
    pair[0].select_folder("INBOX", readonly=True)  # the tag counters move alike
    pair[1].select_folder("INBOX", readonly=True)
    decoy = _decoy_body(pair)
    uids = [
        _append(imap_server, imap_user, subject="odd {12}", body=decoy),
        _append(imap_server, imap_user, subject="plain"),
        _append(imap_server, imap_user, subject="A123 OK {0}", body=decoy * 3),
    ]
    _both(pair, lambda c: c.select_folder("INBOX", readonly=True))
    whole = _same(*pair, "1:*", BODY)
    assert decoy.encode() in _fetched_text(whole)
    headers = _same(*pair, uid_set(uids), fetch_items(pair[1]))
    assert b"Subject: odd {12}\r\n" in _fetched_text(headers)
    # The connection is in step afterwards: the next command gets its own answer.
    _same(*pair, str(uids[1]), ["UID", "FLAGS"])
    assert sorted(_parse_by_uid(_raw_uid_fetch(pair[1], "1:*", ["UID"]))) == uids


def test_two_literals_in_one_answer(imap_server, imap_user, pair):
    """A response whose trailer announces a second literal (and one whose literal ends in
    what looks like a trailer) is read as imaplib reads it."""
    uids = [_append(imap_server, imap_user, subject=f"two {i}", body=f"text {i} {{3}}\r\n)")
            for i in range(3)]  # fmt: skip
    _both(pair, lambda c: c.select_folder("INBOX", readonly=True))
    outcome = _same(*pair, uid_set(uids),
                    ["UID", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]", "BODY.PEEK[TEXT]"])  # fmt: skip
    literals = [d for d in outcome["result"][1] if isinstance(d, tuple)]
    assert len(literals) == 2 * len(uids)
    assert b"Subject: two 2" in _fetched_text(outcome) and b"text 2 {3}" in _fetched_text(outcome)


def test_unsolicited_responses_during_the_fetch(imap_server, imap_user, pair):
    uids = [_append(imap_server, imap_user, subject=f"m{i}") for i in range(4)]
    _both(pair, lambda c: c.select_folder("INBOX", readonly=True))
    # Another session changes the folder while both are selected: new mail, a flag, an
    # expunge. Both sessions hear about it with their next command, the FETCH.
    added = _append(imap_server, imap_user, subject="arrived meanwhile")
    imap_server.add_flags(imap_user, "INBOX", uids[1], ["\\Answered"])
    imap_server.expunge(imap_user, "INBOX", uids[2])
    time.sleep(0.2)  # pymap tells its sessions through a background task
    outcome = _same(*pair, uid_set([uids[0], uids[3], added]), fetch_items(pair[1]))
    if isinstance(imap_server, DovecotServer):  # what Dovecot sends, so the test means something
        assert "EXISTS" in outcome["untagged"] and "EXPUNGE" in outcome["untagged"]
        flags = [d for d in outcome["result"][1] if isinstance(d, bytes) and b"\\Answered" in d]
        assert flags, outcome  # the unsolicited FETCH (FLAGS) is part of the data
    # The watcher still sees the news about the selected folder.
    assert take_unsolicited(pair[1]) == take_unsolicited(pair[0])

    more = _append(imap_server, imap_user, subject="and another")
    imap_server.add_flags(imap_user, "INBOX", uids[0], ["\\Flagged"])
    time.sleep(0.2)
    _same(*pair, f"{more}:*", fetch_items(pair[1]))
    # Unsolicited FETCH data imaplib kept from an earlier command is dropped, as before.
    imap_server.add_flags(imap_user, "INBOX", uids[3], ["\\Seen"])
    time.sleep(0.2)
    _both(pair, lambda c: c.noop())
    _same(*pair, str(uids[0]), ["UID", "FLAGS"])


def test_empty_answers(imap_server, imap_user, pair):
    _both(pair, lambda c: c.select_folder("INBOX", readonly=True))
    _same(*pair, "1:*", ["UID", "FLAGS"])  # an empty folder
    uid = _append(imap_server, imap_user)
    _both(pair, lambda c: c.noop())
    assert _same(*pair, str(uid + 100), ["UID", "FLAGS"])["result"] == ("ok", [])
    _same(*pair, f"{uid + 100}:*", ["UID", "FLAGS"])  # the last message, as RFC 3501 says


def test_no_and_bad_answers(imap_server, imap_user, pair):
    _append(imap_server, imap_user)
    # Not selected: imaplib refuses before sending anything.
    first = _same(*pair, "1:*", ["UID"])
    assert first["result"][0] == "raised"
    # The server refuses: imaplib believes a folder is selected, the server knows better.
    for c in pair:
        c._imap.state = "SELECTED"
    refused = _same(*pair, "1:*", ["UID"])
    assert refused["result"][0] == "raised" and refused["unanswered"] == 0
    _both(pair, lambda c: c.select_folder("INBOX", readonly=True))
    for msgset, items in (("1:*", ["UID", "NO-SUCH-ITEM"]), ("0", ["UID"]), ("x:y", ["UID"])):
        outcome = _same(*pair, msgset, items)
        assert outcome["result"][0] == "raised", outcome
    assert _same(*pair, "1:*", ["UID"])["result"][0] == "ok"  # still in step


def test_server_no_after_some_fetch_data(imap_server, imap_user, pair):
    """A NO after FETCH responses: ``BINARY[1]`` of a part in an unknown transfer encoding
    is ``NO [UNKNOWN-CTE]`` (RFC 3516) on Dovecot, the data of the other messages comes
    first and stays in ``untagged_responses``. pymap breaks off in the middle of a line
    instead (an aborted connection on both paths)."""
    plain = make_message()
    cte = b"charset=utf-8\r\nContent-Transfer-Encoding: x-odd\r\n"
    odd = plain.replace(b"charset=utf-8\r\n", cte)
    uids = [imap_server.append(imap_user, "INBOX", raw, internaldate=NOW) for raw in (plain, odd)]
    _both(pair, lambda c: c.select_folder("INBOX", readonly=True))
    outcome = _same(*pair, uid_set(uids), ["UID", "BINARY.PEEK[1]"])
    assert outcome["result"][0] == "raised"
    if isinstance(imap_server, DovecotServer):
        assert "fetch failed: [UNKNOWN-CTE]" in outcome["result"][2]
        assert outcome["untagged"]["FETCH"] and "UNKNOWN-CTE" in outcome["untagged"]
        assert _same(*pair, str(uids[0]), ["UID", "BINARY.PEEK[1]"])["result"][0] == "ok"


def test_bye_during_the_fetch_aborts(dovecot_server: DovecotServer, make_mailbox_config,
                                     resolve):  # fmt: skip
    """Dovecot says BYE to its sessions on a folder that was deleted under them."""
    user = dovecot_server.add_user()
    dovecot_server.create_folder(user, "Doomed")
    dovecot_server.append(user, "Doomed", make_message(), internaldate=NOW)
    mb = make_mailbox_config(dovecot_server, user)
    pair = (connect(mb, resolve=resolve), connect(mb, resolve=resolve))
    try:
        _both(pair, lambda c: c.select_folder("Doomed", readonly=True))
        with dovecot_server.admin(user) as admin:
            admin.delete_folder("Doomed")
        time.sleep(0.2)
        outcome = _same(*pair, "1:*", ["UID", "FLAGS"])
        if outcome["result"][0] == "raised" and "BYE" in outcome["untagged"]:
            assert outcome["result"][1] is pair[1]._imap.abort
    finally:
        for c in pair:
            logout(c)


def test_tls_connection(tls_dovecot: DovecotServer, make_mailbox_config, resolve):
    user = tls_dovecot.add_user()
    plain = make_mailbox_config(tls_dovecot, user)
    mb = dataclasses.replace(plain, security="tls", port=tls_dovecot.tls_port,
                             ca_file=tls_dovecot.cert_file)  # fmt: skip
    pair = (connect(mb, resolve=resolve), connect(mb, resolve=resolve))
    try:
        _both(pair, lambda c: c.select_folder("INBOX", readonly=True))
        decoy = _decoy_body(pair)
        uids = [tls_dovecot.append(user, "INBOX", make_message(body=decoy * (i + 1)),
                                   internaldate=NOW) for i in range(30)]  # fmt: skip
        _both(pair, lambda c: c.noop())
        _same(*pair, "1:*", BODY)
        _same(*pair, uid_set(uids), fetch_items(pair[1]))
        new = fetch_new(pair[1], uids, 7, fetch_items(pair[1]))
        assert new == _old_fetch_new(pair[0], uids, 7, fetch_items(pair[0]))
    finally:
        for c in pair:
            logout(c)


def test_pipelined_batches_give_what_one_batch_at_a_time_gave(imap_server, imap_user, pair):
    uids = [_append(imap_server, imap_user, subject=f"Offer {i}") for i in range(23)]
    _both(pair, lambda c: c.select_folder("INBOX", readonly=True))
    items = fetch_items(pair[1])
    asked = [*uids[1:], uids[0], 10_000]  # unsorted, and one UID that does not exist
    for batch in (1, 5, 23, 500):
        new = fetch_new(pair[1], asked, batch, items)
        assert new == _old_fetch_new(pair[0], asked, batch, items)
        assert [m.uid for m in new] == uids
    assert fetch_new(pair[1], [], 5, items) == []
    result = sync_folder(pair[1], "INBOX", "inbox", None, since=SINCE, batch_size=4)
    assert [m.uid for m in result.new_messages] == uids
    imap = pair[1]._imap  # nothing left in flight, no FETCH data left over
    assert not imap.tagged_commands and "FETCH" not in imap.untagged_responses


def test_unparseable_batch_falls_back_after_the_pipeline(imap_server, imap_user, pair,
                                                         monkeypatch):  # fmt: skip
    uids = [_append(imap_server, imap_user, subject=f"Offer {i}") for i in range(9)]
    _both(pair, lambda c: c.select_folder("INBOX", readonly=True))
    items = fetch_items(pair[1])
    expected = _old_fetch_new(pair[0], uids, 4, items)
    real = uidfetch.parse_fetch_response
    calls = []

    def flaky(data, *args):  # the second batch of four cannot be parsed as a whole
        calls.append(len(data))
        if len(calls) == 2:
            raise ValueError("cannot parse")
        return real(data, *args)

    monkeypatch.setattr(uidfetch, "parse_fetch_response", flaky)
    monkeypatch.setattr(imapfetch, "parse_common", lambda data: None)  # the general path
    assert fetch_new(pair[1], uids, 4, items) == expected
    assert len(calls) > 3  # UID list and one message at a time for the failed batch


def test_a_stalled_server_times_out(imap_server, imap_user, make_mailbox_config, resolve):
    uids = [_append(imap_server, imap_user) for _ in range(3)]
    with FaultProxy((imap_server.host, imap_server.port)) as proxy:
        mb = dataclasses.replace(make_mailbox_config(imap_server, imap_user, timeout=1.0),
                                 port=proxy.port)  # fmt: skip
        client = connect(mb, resolve=resolve)
        try:
            client.select_folder("INBOX", readonly=True)
            proxy.stall()
            started = time.monotonic()
            with pytest.raises(OSError):
                fetch_new(client, uids, 2, fetch_items(client))
            assert time.monotonic() - started < 5
        finally:
            proxy.resume()
            client.shutdown()


def test_a_connection_cut_in_a_literal_aborts(imap_server, imap_user, make_mailbox_config,
                                              resolve):  # fmt: skip
    for _ in range(3):
        _append(imap_server, imap_user, body="x" * 5000)
    with FaultProxy((imap_server.host, imap_server.port)) as proxy:
        mb = dataclasses.replace(make_mailbox_config(imap_server, imap_user), port=proxy.port)
        pair = (connect(mb, resolve=resolve), connect(mb, resolve=resolve))
        try:
            _both(pair, lambda c: c.select_folder("INBOX", readonly=True))
            proxy.cut_after(3000)
            outcome = _same(*pair, "1:*", BODY)
            assert outcome["result"][1] is pair[1]._imap.abort
        finally:
            proxy.cut_after(None)
            for c in pair:
                c.shutdown()
