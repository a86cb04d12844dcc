"""Configs whose mailboxes log in as applications of the test token server."""

from __future__ import annotations

from pathlib import Path

import yaml
from tests.servers.tokenserver import CLIENT_ID, TENANT, TokenServer


def oauth2_apps(token_server: TokenServer, directory: Path) -> dict[str, dict]:
    """``oauth2_apps``: "workspace" (Google, a service account key file) and "m365"
    (Microsoft 365, a certificate), both at `token_server`."""
    key = directory / "google-key.json"
    key.write_text(token_server.service_account_json())
    key.chmod(0o600)
    return {
        "workspace": {"provider": "google", "service_account_file": str(key)},
        "m365": {"provider": "microsoft365", "tenant": TENANT, "client_id": CLIENT_ID,
                 "certificate_file": str(token_server.certificate_file),
                 "private_key_file": str(token_server.private_key_file),
                 "token_url": token_server.m365_token_url},
    }


def use_apps(config: Path, token_server: TokenServer, apps_of: dict[str, str]) -> Path:
    """Rewrite `config` so that each mailbox named in `apps_of` logs in with that app
    instead of its password."""
    data = yaml.safe_load(config.read_text())
    data["oauth2_apps"] = oauth2_apps(token_server, config.parent)
    for mb in data["mailboxes"]:
        if mb["name"] in apps_of:
            mb.pop("password_file", None)
            mb["oauth2"] = apps_of[mb["name"]]
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return config
