"""What a token request gives: a `Grant`, or a `TokenError` that names the application."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ackwatch.config import OAuth2App


class TokenError(Exception):
    """A token could not be had. The message names the application, never a secret."""

    def __init__(self, app: OAuth2App, problem: str):
        self.app = app
        self.problem = problem
        super().__init__(f"oauth2 application {app.name} ({app.provider}): {problem}")


class TokenRefused(TokenError):
    """The provider refused: the application's credentials or permissions are wrong."""


class TokenUnavailable(TokenError):
    """The token endpoint could not be reached or failed: try again later."""


@dataclass(frozen=True)
class Grant:
    """An access token and how many seconds it is valid for, as the provider said."""

    token: str
    expires_in: float

    def __repr__(self) -> str:
        return f"Grant(***, expires_in={self.expires_in:g})"
