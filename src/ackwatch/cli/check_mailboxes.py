"""``ackwatch check-mailboxes``: log in to every mailbox and to SMTP as the daemon would,
and say what works and, for what does not, what to do. Changes nothing on the servers and
sends no mail unless ``--send-test TO`` is given.

Exit status: 0 when everything works; 77 (EX_NOPERM) when a login was refused, the most
specific thing ops must fix; else 69 (EX_UNAVAILABLE) when something cannot be reached or
a mailbox has no sent folder to watch.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from ackwatch.cli.common import EX_OK, EX_UNAVAILABLE, load, out
from ackwatch.core.printable import clean, json_text

if TYPE_CHECKING:
    from ackwatch.config import Config
    from ackwatch.mail.probe import MailboxProbe

NAME = "check-mailboxes"
HELP = ("log in to every mailbox and to SMTP; show what ackwatch would watch and, for what "
        "fails, what to do")
EX_NOPERM = 77  # a login was refused


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.add_argument("--send-test", metavar="TO",
                        help="also send a test mail to TO through smtp (nothing is sent "
                             "otherwise)")


def run(args: argparse.Namespace) -> int:
    from ackwatch.mail.probe import probe_mailbox

    config = load(args)
    since = (dt.datetime.now(dt.UTC) - config.sync.backfill).date()
    mailboxes = [probe_mailbox(mb, since) for mb in config.mailboxes]
    smtp = _smtp(config, args.send_test)
    if args.json:
        out(json_text({"mailboxes": [dataclasses.asdict(p) for p in mailboxes], "smtp": smtp}))
    else:
        for probe in mailboxes:
            out(_text(probe))
        if smtp is not None:
            out(_smtp_text(smtp))
    failures = {p.failure for p in mailboxes} | {smtp.get("failure") if smtp else None}
    if "refused" in failures:
        return EX_NOPERM
    if failures - {None}:
        return EX_UNAVAILABLE
    return EX_OK


def _text(p: MailboxProbe) -> str:
    if p.failure in ("refused", "unreachable"):
        return f"{p.name} ({p.host}): FAILED: {clean(p.problem or '')}"
    lines = [f"{p.name} ({p.host}): {'OK' if p.failure is None else 'FAILED'}",
             f"  login: {p.mechanism}",
             f"  capabilities: {', '.join(p.capabilities) or 'none of IDLE, CONDSTORE, SPECIAL-USE'}",
             f"  inbox: {', '.join(clean(f) for f in p.inbox)}",
             f"  sent: {', '.join(clean(f) for f in p.sent) or '-'}"
             + (f" ({p.sent_reason})" if p.sent else "")]
    if p.backfill_messages is not None:
        lines.append(f"  messages in the backfill window: {p.backfill_messages}")
    if p.problem:
        lines.append(f"  what to do: {clean(p.problem)}")
    return "\n".join(lines)


def _smtp(config: Config, send_test: str | None) -> dict[str, Any] | None:
    if config.smtp is None:
        return None
    from ackwatch.mail import smtp as smtp_mail

    cfg = config.smtp
    result: dict[str, Any] = {"host": f"{cfg.host}:{cfg.port}", "failure": None,
                              "problem": None, "sent_test_to": None}
    try:
        if send_test:
            smtp_mail.send(_test_mail(cfg.from_address, send_test), cfg)
            result["sent_test_to"] = send_test
        else:
            smtp_mail.check(cfg)
    except smtp_mail.SendError as exc:
        refused = exc.failure in ("auth_refused", "auth_unusable", "secret_unavailable")
        result["failure"] = "refused" if refused else "unreachable"
        result["problem"] = str(exc)
    return result


def _smtp_text(result: dict[str, Any]) -> str:
    if result["failure"]:
        return f"smtp ({result['host']}): FAILED: {clean(result['problem'])}"
    sent = f"; test mail sent to {result['sent_test_to']}" if result["sent_test_to"] else ""
    return f"smtp ({result['host']}): OK{sent}"


def _test_mail(from_address: str, to: str) -> Any:
    from email.message import EmailMessage
    from email.utils import make_msgid

    msg = EmailMessage()
    msg["From"], msg["To"] = from_address, to
    msg["Subject"] = "ackwatch test mail"
    msg["Message-ID"] = make_msgid(domain="ackwatch.invalid")
    msg["X-Ackwatch"] = "test"
    msg.set_content("This mail was sent by `ackwatch check-mailboxes --send-test`.\n")
    return msg
