"""``ackwatch check-config``: validate the config file, then warn about what loads fine but
will probably not work (secrets this shell cannot see, lax file modes, missing files)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from ackwatch import credentials as secrets
from ackwatch.cli.common import EX_OK, err, load, out, plural
from ackwatch.config import Config

NAME = "check-config"
HELP = "validate the config file; report every error, and warnings about secrets and files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # only -c/--config


def run(args: argparse.Namespace) -> int:
    config = load(args)
    out(
        "config OK: "
        + ", ".join(
            [
                plural(len(config.mailboxes), "mailbox", "mailboxes"),
                plural(len(config.calendars), "calendar"),
                plural(len(config.policies), "policy", "policies"),
                plural(len(config.accounts), "account"),
                plural(len(config.clients), "client"),
            ]
        )
    )
    for warning in config_warnings(config):
        err(f"warning: {warning}")
    return EX_OK


def config_warnings(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """Things that load fine but will probably not work as intended (never a secret):
    secrets this shell cannot see, lax file modes, no smtp, missing files."""
    warnings: list[str] = []
    warnings += secrets.secret_warnings(config, environ)
    warnings += secrets.permission_warnings(config)
    if config.smtp is None:
        warnings.append("smtp: not configured: no nudge, escalation or digest can be sent")
    if not config.agency.domains and not config.agency.addresses:
        warnings.append(
            "agency: no domains and no addresses: only the watched mailboxes and the accounts "
            "count as agency side"
        )
    if config.notify.templates_dir is not None and not config.notify.templates_dir.is_dir():
        warnings.append(f"notify.templates_dir: {config.notify.templates_dir} is not a directory")
    for i, mb in enumerate(config.mailboxes):
        if mb.ca_file is not None and not mb.ca_file.is_file():
            warnings.append(f"mailboxes[{i}].ca_file: {mb.ca_file} does not exist")
    smtp_ca = config.smtp.ca_file if config.smtp is not None else None
    if smtp_ca is not None and not smtp_ca.is_file():
        warnings.append(f"smtp.ca_file: {smtp_ca} does not exist")
    from ackwatch.config import is_loopback
    from ackwatch.daemon.httpserve import parse_listen

    if config.metrics.listen and not is_loopback(parse_listen(config.metrics.listen)[0]):
        warnings.append(
            f"metrics.listen: {config.metrics.listen} is not a loopback address: whoever "
            "reaches it reads account addresses and mailbox names; listen on 127.0.0.1 "
            "behind a proxy, or firewall the port"
        )
    managers = [a for a in config.accounts if a.manager]
    if (
        config.accounts
        and not managers
        and any(p.escalate_after is not None for p in config.policies.values())
    ):
        warnings.append("accounts: no account has a manager, so nothing is ever escalated")
    return warnings
