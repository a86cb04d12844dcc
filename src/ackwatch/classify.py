"""Which mail is client mail, which is the agency's, which is auto-generated (DESIGN.md).

Pure functions of a `Message` and the `Config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .config import Client, Config
from .message import Message

Kind = Literal["client", "agency", "auto", "own", "ignored", "other"]


@dataclass(frozen=True)
class Classification:
    kind: Kind
    reason: str  # short machine-friendly reason, e.g. "auto-submitted", "ignore-sender"
    client_address: str | None = None  # for kind == "client": the client (Reply-To for forms)
    client: Client | None = None  # the configured client it matched, None for unknown senders
    out_of_office: bool = False  # an auto-reply that looks like an absence notice


def is_agency_address(address: str, config: Config) -> bool:
    raise NotImplementedError


def match_client(address: str, config: Config) -> Client | None:
    raise NotImplementedError


def auto_generated_reason(message: Message) -> str | None:
    """Why a message is auto-generated (RFC 3834 and the usual headers), or None."""
    raise NotImplementedError


def classify(message: Message, config: Config) -> Classification:
    raise NotImplementedError


def is_acknowledgement_candidate(message: Message, config: Config) -> bool:
    """From the agency side, human, addressed (To/Cc) to at least one external address."""
    raise NotImplementedError
