"""Pieces of the YAML configs the tests that run ackwatch write: a private password file
and one entry of ``mailboxes``."""

from __future__ import annotations

import textwrap
from pathlib import Path


def password_file(tmp_path: Path, name: str, secret: str) -> Path:
    """``<tmp_path>/<name>.pass`` holding ``secret`` (UTF-8), 0600 as ackwatch wants it."""
    path = tmp_path / f"{name}.pass"
    path.write_text(secret + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def mailbox_yaml(name: str, host: str, port: int, user: str, password: Path, owner: str, *,
                 inbox: str = "[INBOX]", timeout: float = 10) -> str:
    """One item of the ``mailboxes`` list, plain IMAP, at the list's indentation."""
    return textwrap.dedent(f"""\
      - name: {name}
        host: {host}
        port: {port}
        security: none
        username: {user}
        password_file: {password}
        owner: {owner}
        folders: {{inbox: {inbox}, sent: [Sent]}}
        timeout: {timeout}
    """)
