"""The weekly digest's words and HTML: in the recipient's language, built for mail programs.

Language: the rule of every queued mail (`compose.render_queued`): the recipient's own
``accounts[].language``; a manager who is not an account gets the language of the
accounts the digest is about (the first of the team, in config order); English when
none is configured or the language has no strings. Every phrase is in ``[digest]`` of
``templates/<lang>/strings.toml`` (en, pl, uk, bg), overridable like the nudges' words.

The HTML part is made for Gmail and Outlook, which keep neither SVG nor ``<style>``
blocks, flexbox or grid: layout tables, widths in percent or pixels on ``td``, colours
as inline ``style`` plus ``bgcolor``, no image, no script, no external resource. A bar
is a one-row table whose first cell's width is the share.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ackwatch.config import Config
from ackwatch.core.printable import clean
from ackwatch.mail.templates import Templates, fill, plural, resolve_language
from ackwatch.reporting.dates import DateFigures, DateReport, share_text
from ackwatch.reporting.digest_recipients import mentors_only
from ackwatch.reporting.figures import (
    ClientDemand,
    Figures,
    Report,
    below_target,
    client_demand,
)
from ackwatch.reporting.formatting import fit

_GOOD, _NEAR, _BAD, _TRACK, _DEMAND = "#16a34a", "#f59e0b", "#dc2626", "#e5e7eb", "#2563eb"
_INK, _MUTED, _LINE = "#1f2937", "#6b7280", "#e5e7eb"
_FONT = "font-family:Arial,Helvetica,sans-serif"
_NEAR_BAND = 0.1  # below the target by at most this: amber (as the HTML report)


def language_for(config: Config, recipient: str, team: Sequence[str]) -> str:
    """The digest's language code (see the module docstring)."""
    own = config.account(recipient)
    about = next((a for a in (config.account(m) for m in team) if a is not None), None)
    who = own or about
    return resolve_language(who.language if who else None, config.notify.templates_dir)


@dataclass(frozen=True)
class DigestParts:
    language: str
    subject: str
    text: str
    html: str


class _Words:
    """The ``[digest]`` phrases and the number formats of one language."""

    def __init__(self, config: Config, language: str, tz: ZoneInfo):
        strings = Templates(config.notify.templates_dir, language).strings()
        self.language = language
        self.tz = tz
        self.digest: Mapping[str, str] = strings.get("digest", {})
        self.date: Mapping[str, Any] = strings.get("date", {})
        self.duration: Mapping[str, str] = strings.get("duration", {})
        self.emails_forms: Mapping[str, str] = strings.get("emails", {"other": "$n"})

    def __call__(self, key: str, values: Mapping[str, object] | None = None,
                 **more: object) -> str:
        given = {**(values or {}), **more}
        return fill(self.digest.get(key, key), {k: str(v) for k, v in given.items()})

    def day(self, instant: dt.datetime) -> str:
        local = instant.astimezone(self.tz)
        weekdays, months = self.date.get("weekdays", ()), self.date.get("months", ())
        return fill(self.digest.get("date", "$day $month $year"), {
            "weekday": weekdays[local.weekday()] if len(weekdays) == 7 else f"{local:%a}",
            "day": str(local.day),
            "month": months[local.month - 1] if len(months) == 12 else f"{local:%b}",
            "year": str(local.year),
        })

    def emails(self, n: int) -> str:
        return plural(self.emails_forms, self.language, n)

    def minutes(self, value: float | None) -> str:
        """The two largest units in the language's words ("1 h 30 min"); "–" for none."""
        if value is None:
            return "–"
        whole = max(0, round(value))
        days, rest = divmod(whole, 24 * 60)
        hours, mins = divmod(rest, 60)
        units = [(u, v) for u, v in (("days", days), ("hours", hours), ("minutes", mins)) if v]
        if not units:
            units = [("minutes", 0)]
        default = {"days": "$n d", "hours": "$n h", "minutes": "$n min"}
        return " ".join(fill(self.duration.get(u, default[u]), {"n": str(v)})
                        for u, v in units[:2])


def pct(level: float | None) -> str:
    return "–" if level is None else f"{level * 100:.0f}%"


def _tier_colour(level: float | None, target: float) -> str:
    if level is None:
        return _TRACK
    if level >= target:
        return _GOOD
    return _NEAR if level >= target - _NEAR_BAND - 1e-9 else _BAD


def _e(text: object) -> str:
    """HTML-escaped, control characters removed (client names pass through here)."""
    return html.escape(clean(str(text)), quote=True)


# --------------------------------------------------------------------------- the mail


def compose_digest(
    config: Config,
    recipient: str,
    this_week: Report,
    week_before: Report,
    *,
    team: Sequence[str],
    target: float,
    dates: DateReport,
    dates_before: DateReport,
    timezone: str,
) -> DigestParts:
    """Subject, plain text and HTML of one recipient's digest; the week's first day named
    in ``timezone`` (the recipient's, whose Monday the week starts on). A mentor who
    manages none of ``team`` is told about "the people you mentor" (``intro_mentor``)
    rather than "your team"."""
    language = language_for(config, recipient, team)
    w = _Words(config, language, ZoneInfo(timezone))
    acc = config.account(recipient)
    name = acc.name if acc is not None else recipient.split("@")[0]
    week = w.day(this_week.since)
    t, b = this_week.totals, week_before.totals
    subject = w("subject", level=pct(t.service_level), level_before=pct(b.service_level),
                week=week)
    demand = client_demand(this_week, target)
    view = _View(config, w, this_week, week_before, demand, target, dates, dates_before)
    intro = w("intro_mentor" if mentors_only(config, recipient, team) else "intro", week=week)
    return DigestParts(
        language=language,
        subject=clean(subject),
        text=view.text(w("greeting", name=name), intro),
        html=view.html(subject, w("greeting", name=name), intro),
    )


@dataclass(frozen=True)
class _View:
    config: Config
    w: _Words
    this_week: Report
    week_before: Report
    demand: tuple[ClientDemand, ...]
    target: float
    dates: DateReport
    dates_before: DateReport

    # ------------------------------------------------------------------- shared rows

    def kpis(self) -> list[tuple[str, str, str]]:
        """(label, this week, week before) of the headline figures."""
        w, t, b = self.w, self.this_week.totals, self.week_before.totals
        d, db = self.dates.totals, self.dates_before.totals
        return [
            (w("service_level"), pct(t.service_level), pct(b.service_level)),
            (w("client_emails"), str(t.client_emails), str(b.client_emails)),
            (w("median"), w.minutes(t.median_minutes), w.minutes(b.median_minutes)),
            (w("p90"), w.minutes(t.p90_minutes), w.minutes(b.p90_minutes)),
            (w("overdue"), str(t.overdue), str(b.overdue)),
            (w("said_by_when"), share_text(d), share_text(db)),
        ]

    def date_detail(self) -> str:
        """How many acknowledgements read named a date; "" when none was acknowledged."""
        d: DateFigures = self.dates.totals
        if not d.with_date + d.without_date + d.not_read:
            return ""
        return self.w("said_by_when_detail", {"with": d.with_date},
                      read=d.with_date + d.without_date, not_read=d.not_read)

    def account_name(self, address: str | None) -> str:
        if not address:
            return self.w("no_account")
        acc = self.config.account(address)
        return acc.name if acc is not None and acc.name else address

    def in_time(self, f: Figures) -> str:
        counted = f.acknowledged + f.overdue
        if not counted:
            return self.w("nothing_due")
        return self.w("in_time", within=f.within_window, counted=counted)

    def target_text(self) -> str:
        return f"{self.target * 100:g}%"

    # ------------------------------------------------------------------- text

    def text(self, greeting: str, intro: str) -> str:
        w = self.w
        kpis = self.kpis()
        width = max(18, *(len(label) + 2 for label, _, _ in kpis))
        values = max(8, *(len(now) for _, now, _ in kpis))
        lines = [greeting, "", intro, ""]
        lines += [f"  {label:<{width}}{now:>{values}}   ({w('week_before')} {before})"
                  for label, now, before in kpis]
        if self.date_detail():
            lines.append(f"  {'':<{width}}{'':>{values}}   {self.date_detail()}")
        lines.append("")
        if self.this_week.totals.client_emails == 0:
            lines += [w("no_mail"), ""]
        else:
            lines += [f"{w('by_account')} ({w('target', target=self.target_text())})"]
            lines += [self._text_row(self.account_name(g.name), g.figures)
                      for g in self.this_week.by_account]
            lines += ["", w("by_client")]
            lines += [self._text_row(g.name or "", g.figures) for g in self.this_week.by_client]
            lines += ["", *self._text_below(), ""]
        lines.append(w("footer"))
        return "\n".join(line.rstrip() for line in lines) + "\n"

    def _text_row(self, name: str, f: Figures) -> str:
        flag = " !" if f.service_level is not None and f.service_level < self.target else ""
        return (f"  {fit(name, 22)} {self.w.emails(f.client_emails):<22} "
                f"{pct(f.service_level):>5}  {self.in_time(f)}{flag}")

    def _text_below(self) -> list[str]:
        below = below_target(self.demand)
        if not below:
            return [self.w("none_below", target=self.target_text())]
        return [self.w("below", target=self.target_text())] + [
            f"  {fit(c.client, 22)} {pct(c.service_level):>5}  "
            f"{self.w('in_time', within=c.within_window, counted=c.counted)}, "
            f"{self.w.emails(c.emails)}"
            for c in below
        ]

    # ------------------------------------------------------------------- html

    def html(self, subject: str, greeting: str, intro: str) -> str:
        w = self.w
        body = [
            _p(_e(greeting), "margin:0 0 8px"),
            _p(_e(intro), "margin:0 0 16px"),
            self._html_kpis(),
        ]
        if self.this_week.totals.client_emails == 0:
            body.append(_p(_e(w("no_mail")), f"margin:16px 0;color:{_MUTED}"))
        else:
            body += [
                _h2(f"{w('by_account')} · {w('target', target=self.target_text())}"),
                self._html_accounts(),
                _h2(w("by_client")),
                self._html_clients(),
                self._html_below(),
            ]
        body.append(_p(_e(w("footer")), f"margin:20px 0 0;font-size:12px;color:{_MUTED}"))
        return (
            f'<!DOCTYPE html>\n<html lang="{_e(w.language)}">\n<head>\n'
            '<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(subject)}</title>\n</head>\n"
            f'<body style="margin:0;padding:0;background:#f6f7f9;{_FONT};color:{_INK}">\n'
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            'border="0" bgcolor="#f6f7f9" style="background:#f6f7f9"><tr>'
            '<td align="center" style="padding:24px 8px">\n'
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            f'border="0" bgcolor="#ffffff" style="width:100%;max-width:640px;background:#ffffff;'
            f'border:1px solid {_LINE};{_FONT};font-size:14px;line-height:20px;color:{_INK}">'
            '<tr><td style="padding:24px">\n'
            f'<p style="margin:0 0 12px;font-size:11px;font-weight:bold;letter-spacing:1px;'
            f'color:#1d4ed8">ACKWATCH</p>\n'
            + "\n".join(body)
            + "\n</td></tr></table>\n</td></tr></table>\n</body>\n</html>\n"
        )

    def _html_kpis(self) -> str:
        cells = []
        for n, (label, now, before) in enumerate(self.kpis()):
            colour = (_tier_colour(self.this_week.totals.service_level, self.target)
                      if n == 0 and self.this_week.totals.service_level is not None else _INK)
            cells.append(
                f'<td width="33%" valign="top" style="width:33%;padding:10px 12px;'
                f'border:1px solid {_LINE}">'
                f'<div style="font-size:12px;color:{_MUTED}">{_e(label)}</div>'
                f'<div class="kpi" style="font-size:22px;line-height:28px;font-weight:bold;'
                f'color:{colour}">{_e(now)}</div>'
                f'<div style="font-size:12px;color:{_MUTED}">{_e(self.w("week_before"))} '
                f"{_e(before)}</div></td>"
            )
        rows = "".join(f"<tr>{''.join(cells[i:i + 3])}</tr>" for i in range(0, len(cells), 3))
        return (
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            f'border="0" style="width:100%;border-collapse:collapse">{rows}</table>'
            + (_p(_e(self.date_detail()), f"margin:6px 0 0;font-size:12px;color:{_MUTED}")
               if self.date_detail() else "")
        )

    def _html_accounts(self) -> str:
        w = self.w
        head = _head((w("account"), "40%"), (w("level"), "40%"), ("", "20%"))
        rows = []
        for g in self.this_week.by_account:
            f = g.figures
            rows.append(
                "<tr>"
                + _cell(_e(self.account_name(g.name)), "40%")
                + _cell(_bar(f.service_level, _tier_colour(f.service_level, self.target),
                             "level"), "40%")
                + _cell(f"<strong>{pct(f.service_level)}</strong><br>"
                        f'<span style="font-size:12px;color:{_MUTED}">'
                        f"{_e(self.in_time(f))}</span>", "20%")
                + "</tr>"
            )
        return _table(head + "".join(rows))

    def _html_clients(self) -> str:
        """Demand (a bar against the busiest client) beside the service level (a bar)."""
        w = self.w
        busiest = max((c.emails for c in self.demand), default=0) or 1
        head = _head((w("client"), "28%"), (w("emails"), "26%"), (w("level"), "26%"),
                     ("", "20%"))
        rows = []
        for c in self.demand:
            tint = ' bgcolor="#fef2f2"' if c.below_target else ""
            rows.append(
                f'<tr class="client"{tint}>'
                + _cell(_e(c.client), "28%")
                + _cell(_bar(c.emails / busiest, _DEMAND, "demand",
                             label=str(c.emails)), "26%")
                + _cell(_bar(c.service_level, _tier_colour(c.service_level, self.target),
                             "level"), "26%")
                + _cell(f"<strong>{pct(c.service_level)}</strong>"
                        + (f' <span style="color:{_BAD}">!</span>' if c.below_target else ""),
                        "20%")
                + "</tr>"
            )
        return _table(head + "".join(rows))

    def _html_below(self) -> str:
        below = below_target(self.demand)
        if not below:
            return _p(_e(self.w("none_below", target=self.target_text())),
                      f"margin:12px 0 0;color:{_MUTED}")
        items = "".join(
            f'<li style="margin:2px 0"><strong>{_e(c.client)}</strong> '
            f"{pct(c.service_level)} · "
            f"{_e(self.w('in_time', within=c.within_window, counted=c.counted))} · "
            f"{_e(self.w.emails(c.emails))}</li>"
            for c in below
        )
        return (
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            'border="0" id="below-target" style="width:100%;margin-top:14px"><tr>'
            f'<td bgcolor="#fee2e2" style="background:#fee2e2;color:#991b1b;'
            f'padding:10px 14px;border-left:4px solid {_BAD}">'
            f"<strong>{_e(self.w('below', target=self.target_text()))}</strong>"
            f'<ul style="margin:6px 0 0;padding-left:18px">{items}</ul></td></tr></table>'
        )


# --------------------------------------------------------------------------- html bits


def _p(inner: str, style: str) -> str:
    return f'<p style="{style}">{inner}</p>'


def _h2(text: str) -> str:
    return (f'<h2 style="margin:22px 0 8px;font-size:16px;line-height:22px;color:{_INK}">'
            f"{_e(text)}</h2>")


def _table(rows: str) -> str:
    return ('<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            f'border="0" style="width:100%;border-collapse:collapse">{rows}</table>')


def _head(*columns: tuple[str, str]) -> str:
    return "<tr>" + "".join(
        f'<td width="{width}" style="width:{width};padding:4px 6px;font-size:11px;'
        f'color:{_MUTED};border-bottom:1px solid {_LINE}">{_e(label)}</td>'
        for label, width in columns
    ) + "</tr>"


def _cell(inner: str, width: str) -> str:
    return (f'<td width="{width}" valign="middle" style="width:{width};padding:6px;'
            f'border-bottom:1px solid {_LINE}">{inner}</td>')


def _bar(share: float | None, colour: str, kind: str, *, label: str = "") -> str:
    """A horizontal bar: a one-row table whose first cell is ``share`` of its width (the
    track is the rest). ``share`` None: an empty track. ``label``: text after the bar."""
    filled = 0 if share is None else round(max(0.0, min(1.0, share)) * 100)
    if share is not None and share > 0:
        filled = max(filled, 2)  # a sliver stays visible
    cells = []
    if filled:
        cells.append(f'<td class="bar {kind}" width="{filled}%" bgcolor="{colour}" '
                     f'style="width:{filled}%;background:{colour};height:12px;font-size:0;'
                     'line-height:0">&nbsp;</td>')
    if filled < 100:
        cells.append(f'<td width="{100 - filled}%" bgcolor="{_TRACK}" '
                     f'style="width:{100 - filled}%;background:{_TRACK};height:12px;'
                     'font-size:0;line-height:0">&nbsp;</td>')
    bar = ('<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
           f'border="0" style="width:100%"><tr>{"".join(cells)}</tr></table>')
    if not label:
        return bar
    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="width:100%"><tr><td width="78%" style="width:78%">{bar}</td>'
        f'<td width="22%" align="right" style="width:22%;padding-left:6px;'
        f'font-weight:bold">{_e(label)}</td></tr></table>'
    )


__all__ = ["DigestParts", "compose_digest", "language_for", "pct"]
