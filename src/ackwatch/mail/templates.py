"""The template files of ackwatch's mails and the language rules they are filled with.

Templates live in ``ackwatch/templates/``; ops may override any of them with a file of
the same relative name in ``notify.templates_dir`` (see ``templates/README.md``).
Reading those files is the only I/O here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

RENDERABLE_KINDS = ("nudge", "escalation", "summary", "promise", "promise-overdue", "ask-date")

_PACKAGE_TEMPLATES: Traversable = resources.files("ackwatch") / "templates"
_LANGUAGE_RE = re.compile(r"[a-z]{2,3}")


def _template_roots(templates_dir: Path | None) -> tuple[Traversable | Path, ...]:
    roots: list[Traversable | Path] = []
    if templates_dir is not None:
        roots.append(Path(templates_dir))
    roots.append(_PACKAGE_TEMPLATES)
    return tuple(roots)


def resolve_language(language: str | None, templates_dir: Path | None = None) -> str:
    """The language used for a recipient: "pl-PL" -> "pl"; unknown -> "en"."""
    code = (language or "").strip().lower().replace("_", "-").split("-")[0]
    if not _LANGUAGE_RE.fullmatch(code):
        return "en"
    for root in _template_roots(templates_dir):
        if (root / code / "strings.toml").is_file():
            return code
    return "en"


class Templates:
    """Template files for one language. A file is looked up in the override directory
    first, then in the package, each time as ``<lang>/<name>`` before ``<name>``.
    With ``memo`` (`TemplateCache`) each file and the merged strings are read once."""

    def __init__(self, templates_dir: Path | None, language: str, *, memo: _Memo | None = None):
        self.roots = _template_roots(templates_dir)
        self.language = language
        self._memo = memo

    def find(self, *names: str) -> str:
        if self._memo is None:
            return self._find(names)
        key = (self.language, names)
        text = self._memo.files.get(key)
        if text is None:
            text = self._memo.files[key] = self._find(names)
        return text

    def _find(self, names: tuple[str, ...]) -> str:
        for name in names:
            for root in self.roots:
                for path in (root / self.language / name, root / name):
                    if path.is_file():
                        return path.read_text(encoding="utf-8")
        raise FileNotFoundError(f"no template {' / '.join(names)} for {self.language}")

    def strings(self) -> dict[str, Any]:
        """English package strings, overlaid by the language's package strings, overlaid by
        the override directory's (same language) — so an override needs only changed keys.
        With a memo the same dict is returned to every caller: read it, never change it."""
        if self._memo is None:
            return self._strings()
        merged = self._memo.strings.get(self.language)
        if merged is None:
            merged = self._memo.strings[self.language] = self._strings()
        return merged

    def _strings(self) -> dict[str, Any]:
        layers: list[Traversable | Path] = [_PACKAGE_TEMPLATES / "en" / "strings.toml"]
        layers += [root / self.language / "strings.toml" for root in reversed(self.roots)]
        merged: dict[str, Any] = {}
        seen: set[str] = set()
        for path in layers:
            if str(path) in seen or not path.is_file():
                continue
            seen.add(str(path))
            layer = tomllib.loads(path.read_text(encoding="utf-8"))
            for kind in RENDERABLE_KINDS:
                # A layer that rewrites a subject but has no one-email variant: its subject
                # applies to one email too (else an override would silently not apply).
                section = layer.get(kind)
                if isinstance(section, dict) and "subject" in section:
                    merged.get(kind, {}).pop("subject_single", None)
            _deep_merge(merged, layer)
        return merged


@dataclass
class _Memo:
    files: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)
    strings: dict[str, dict[str, Any]] = field(default_factory=dict)
    languages: dict[str | None, str] = field(default_factory=dict)


class TemplateCache:
    """The templates of one ``notify.templates_dir``, each file read and each strings
    file parsed once (the daemon keeps one per loaded config: an edited override
    applies from the next SIGHUP). Reading and parsing them for every mail was about a
    third of composing one (bench/README.md, issue 24)."""

    def __init__(self, templates_dir: Path | None) -> None:
        self.templates_dir = templates_dir
        self._memo = _Memo()

    def language(self, requested: str | None) -> str:
        """`resolve_language`, remembered."""
        found = self._memo.languages.get(requested)
        if found is None:
            found = self._memo.languages[requested] = resolve_language(
                requested, self.templates_dir
            )
        return found

    def templates(self, language: str) -> Templates:
        return Templates(self.templates_dir, language, memo=self._memo)


def _deep_merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def fill(template: str, values: Mapping[str, str]) -> str:
    # safe_substitute: a typo in an ops template shows up as "$typo" instead of failing the
    # mail. Values are not re-scanned, so a client subject containing "$x" stays literal.
    return string.Template(template).safe_substitute(values)


def plural_category(language: str, n: int) -> str:
    """CLDR cardinal plural category for the languages ackwatch ships."""
    n = abs(n)
    if language in ("pl", "uk"):
        if language == "pl" and n == 1:
            return "one"
        if language == "uk" and n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    return "one" if n == 1 else "other"


def plural(forms: Mapping[str, str], language: str, n: int) -> str:
    category = plural_category(language, n)
    for key in (str(n), category, "other", "many"):
        if key in forms:
            return fill(forms[key], {"n": str(n)})
    return str(n)


_EN_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Formatter:
    """Dates and durations in one language and timezone."""

    def __init__(self, strings: Mapping[str, Any], tz: dt.tzinfo, now: dt.datetime):
        date = strings.get("date", {})
        weekdays = date.get("weekdays", _EN_WEEKDAYS)
        months = date.get("months", _EN_MONTHS)
        self.weekdays = tuple(weekdays) if len(weekdays) == 7 else _EN_WEEKDAYS
        self.months = tuple(months) if len(months) == 12 else _EN_MONTHS
        self.date = date
        self.duration = strings.get("duration", {})
        self.tz = tz
        self.now = now.astimezone(tz)

    def _parts(self, local: dt.datetime) -> dict[str, str]:
        return {
            "weekday": self.weekdays[local.weekday()],
            "day": str(local.day),
            "month": self.months[local.month - 1],
            "year": str(local.year),
            "time": local.strftime("%H:%M"),
        }

    def when(self, instant: dt.datetime) -> str:
        """'Mon 23 Nov 14:30' (the year added when it is not the current one)."""
        local = instant.astimezone(self.tz)
        key = "datetime" if local.year == self.now.year else "datetime_other_year"
        return fill(self.date.get(key, "$weekday $day $month $time"), self._parts(local))

    def short(self, instant: dt.datetime) -> str:
        """'14:30' today, 'Tue 14:30' within the coming week, else the full form."""
        local = instant.astimezone(self.tz)
        if local.date() == self.now.date():
            return local.strftime("%H:%M")
        if abs((local.date() - self.now.date()).days) < 7:
            return fill(self.date.get("weekday_time", "$weekday $time"), self._parts(local))
        return self.when(instant)

    def remaining(self, deadline: dt.datetime) -> tuple[str, bool]:
        """('1 h 20 min left', False) or ('overdue by 35 min', True)."""
        seconds = (deadline - self.now).total_seconds()
        overdue = seconds <= 0
        # Time left rounds up (never claim less time than there is... nor "0 min left"),
        # overdue rounds down; both show at least one minute.
        minutes = max(1, math.floor(-seconds / 60) if overdue else math.ceil(seconds / 60))
        days, rest = divmod(minutes, 24 * 60)
        hours, mins = divmod(rest, 60)
        units = [("days", days), ("hours", hours), ("minutes", mins)]
        first = next(i for i, (_, v) in enumerate(units) if v)
        shown = [(u, v) for u, v in units[first : first + 2] if v]  # the two largest units
        default = {"days": "$n d", "hours": "$n h", "minutes": "$n min"}
        text = " ".join(fill(self.duration.get(u, default[u]), {"n": str(v)}) for u, v in shown)
        key, fallback = ("overdue", "overdue by $duration") if overdue else ("left", "$duration left")
        return fill(self.duration.get(key, fallback), {"duration": text}), overdue


__all__ = [
    "RENDERABLE_KINDS",
    "Formatter",
    "TemplateCache",
    "Templates",
    "fill",
    "plural",
    "plural_category",
    "resolve_language",
]
