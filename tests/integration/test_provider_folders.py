"""The providers' folder layouts: Gmail's ``[Gmail]/Sent Mail`` found through SPECIAL-USE,
with a reply that Gmail also shows in "All Mail" counted once; Microsoft 365's localized
``Elementy wysłane`` found by its name on a server without SPECIAL-USE (pymap)."""

from __future__ import annotations

import json

import pytest
import yaml
from tests.servers.imapserver import make_message
from tests.support import run_once
from tests.support.daemon import ANNA, client_mail, reply_mail, write_config

pytestmark = pytest.mark.integration


def sent_auto(cfg) -> None:
    data = yaml.safe_load(cfg.read_text())
    for mb in data["mailboxes"]:
        mb["folders"] = {"inbox": ["INBOX"], "sent": "auto"}
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def waiting_after_run_once(cfg) -> list[str]:
    run = run_once.ackwatch("run", "--once", "-c", str(cfg))
    assert run.returncode == 0, run.stdout + run.stderr
    status = run_once.ackwatch("status", "-c", str(cfg), "--json")
    return [item["message_id"] for item in json.loads(status.stdout)]


@pytest.mark.dovecot
def test_gmail_sent_mail_is_found_by_special_use_and_all_mail_counts_nothing_twice(
    dovecot, sink, tmp_path
):
    anna = dovecot.add_user()
    dovecot.create_folder(anna, "[Gmail]/Sent Mail", "\\Sent")
    dovecot.create_folder(anna, "[Gmail]/All Mail", "\\All")
    answered = client_mail("Quote", "<quote@acme.example>")
    waiting = client_mail("Banner sizes", "<banner@acme.example>")
    reply = reply_mail("<quote@acme.example>", "Quote")
    for raw in (answered, waiting):  # Gmail shows every mail in All Mail as well
        dovecot.append(anna, "INBOX", raw)
        dovecot.append(anna, "[Gmail]/All Mail", raw)
    dovecot.append(anna, "[Gmail]/Sent Mail", reply)
    dovecot.append(anna, "[Gmail]/All Mail", reply)
    cfg = write_config(tmp_path, dovecot, {"anna": (anna, ANNA)}, sink)
    sent_auto(cfg)
    assert waiting_after_run_once(cfg) == ["<banner@acme.example>"]


def test_a_localized_sent_items_folder_is_found_by_its_name_without_special_use(
    pymap_server, sink, tmp_path
):
    anna = pymap_server.add_user()
    pymap_server.create_folder(anna, "Elementy wysłane")
    pymap_server.append(anna, "INBOX", client_mail("Wycena", "<wycena@acme.example>"))
    pymap_server.append(anna, "Elementy wysłane", make_message(
        subject="Re: Wycena", sender=ANNA, to="jan@acme.example",
        in_reply_to="<wycena@acme.example>"))
    cfg = write_config(tmp_path, pymap_server, {"anna": (anna, ANNA)}, sink)
    sent_auto(cfg)
    assert waiting_after_run_once(cfg) == []
