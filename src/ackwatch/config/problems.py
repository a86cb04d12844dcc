"""What is wrong, and where: the problems a load collects and how they are reported.

Every converter and section reads its keys through the helpers here: a problem is
recorded at its key path (``mailboxes[1].port``) and the value becomes `INVALID`, so
one load reports every problem at once. `ConfigError` carries them all; the CLI
catches it once and exits `EX_CONFIG`.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EX_CONFIG = 78  # sysexits.h: configuration error


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config, at a key path like ``mailboxes[1].port``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """Every problem found in one config file, reported together."""

    def __init__(self, file: Path | str, problems: list[Problem]):
        self.file = str(file)
        self.problems = tuple(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.file}: {len(self.problems)} configuration error(s):"]
        lines += [f"  {self.file}: {p}" for p in self.problems]
        return "\n".join(lines)


# --------------------------------------------------------------------------- plumbing


class _InvalidType:
    def __repr__(self) -> str:
        return "<invalid>"


INVALID: Any = _InvalidType()  # a value that already produced a Problem
REQUIRED: Any = object()  # "no default": the key must be given


class Bad(Exception):
    """Raised by scalar converters; the message becomes a `Problem` at the current path."""


Conv = Callable[["Ctx", object, str], Any]


class Ctx:
    """One load's state: where relative paths start, and the problems found so far."""

    def __init__(self, base: Path):
        self.base = base  # directory of the config file (relative paths)
        self.problems: list[Problem] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))


def join_path(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def show(value: object) -> str:
    """A value as a problem message shows it: strings quoted, containers by kind."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def suggest(word: object, choices: Iterable[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(str(word).lower(), list(choices), n=1, cutoff=cutoff)
    return f' (did you mean "{close[0]}"?)' if close else ""


def scalar(fn: Callable[[Any], Any]) -> Conv:
    def conv(ctx: Ctx, value: object, path: str) -> Any:
        try:
            return fn(value)
        except Bad as exc:
            ctx.error(path, str(exc))
            return INVALID

    return conv


def mapping(ctx: Ctx, value: object, path: str) -> dict | None:
    if isinstance(value, dict):
        return value
    ctx.error(path, f"expected a mapping (key: value), got {show(value)}")
    return None


def check_keys(
    ctx: Ctx,
    m: Mapping,
    path: str,
    allowed: Iterable[str],
    refused: Mapping[str, str] | None = None,
) -> None:
    """Unknown keys are errors (with a hint); ``refused`` keys get their own message."""
    allowed = list(allowed)
    refused = refused or {}
    for key in m:
        if key in allowed:
            continue
        if key in refused:
            ctx.error(join_path(path, key), refused[key])
        else:
            ctx.error(join_path(path, key), "unknown key" + suggest(key, allowed))


def get_key(ctx: Ctx, m: Mapping, path: str, key: str, conv: Conv, default: Any = None) -> Any:
    """Convert ``m[key]``; a missing (or null) key gives ``default``, or a problem when
    the key is required (``default=REQUIRED``)."""
    value = m.get(key)
    if value is None:
        if default is REQUIRED:
            what = "missing (required)" if key not in m else "has no value (required)"
            ctx.error(join_path(path, key), what)
            return INVALID
        return default
    return conv(ctx, value, join_path(path, key))


def unknown_name(what: str, name: str, known: Iterable[str]) -> str:
    """'unknown calendar "ofice" (did you mean "office"?)' or '... (known: a, b)'."""
    known = list(known)
    hint = suggest(name, known)
    if not hint:
        listing = ", ".join(known) if known else "none are defined"
        hint = f" (known: {listing})"
    return f"unknown {what} {show(name)}{hint}"


def valid(*values: object) -> bool:
    return all(v is not INVALID for v in values)
