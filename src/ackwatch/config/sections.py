"""The sections of the config file, one function each, and `build`, which walks the
whole file into a `Config`.

Each section reads its keys through `problems` (unknown keys, missing required keys),
converts the values (`convert`, `times`), checks the references between sections
(a policy's calendar, an account's backup, a client's account) and returns the model's
value, or `INVALID` once a problem was recorded. Defaults come from the model.
The connections (mailboxes, smtp) are in `connections`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ackwatch.config import connections, oauth2apps, web
from ackwatch.config.convert import (
    c_address,
    c_authserv_id,
    c_bool,
    c_domain,
    c_enum,
    c_int_range,
    c_keyword,
    c_language,
    c_list,
    c_listen,
    c_path,
    c_pattern,
    c_regex,
    c_relay,
    c_str,
)
from ackwatch.config.model import (
    UNKNOWN_SENDERS,
    Absence,
    Account,
    Agency,
    CalendarConfig,
    Client,
    ClusterConfig,
    Config,
    DigestConfig,
    IgnoreRules,
    LogConfig,
    MetricsConfig,
    NotifyConfig,
    Policy,
    PromiseConfig,
    SyncConfig,
    Trust,
    default_of,
)
from ackwatch.config.problems import (
    INVALID,
    REQUIRED,
    Conv,
    Ctx,
    check_keys,
    get_key,
    join_path,
    mapping,
    scalar,
    show,
    suggest,
    unknown_name,
    valid,
)
from ackwatch.config.schema import ACCOUNT_KEYS, POLICY_KEYS, TOP_KEYS
from ackwatch.config.times import (
    c_date,
    c_duration,
    c_hours,
    c_positive_duration,
    c_timezone,
    c_weekly_time,
    format_duration,
    holidays_country,
)

# --------------------------------------------------------------------------- calendars


def _calendar(ctx: Ctx, name: str, value: object, path: str, default_tz: Any) -> Any:
    m = mapping(ctx, value, path)
    if m is None:
        return INVALID
    check_keys(ctx, m, path, ("timezone", "hours", "holidays", "closed"))
    tz = get_key(ctx, m, path, "timezone", c_timezone, default_tz)
    if tz is None:
        tz = INVALID  # the top-level timezone is missing; that is reported already
    hours = get_key(ctx, m, path, "hours", c_hours, REQUIRED)
    country = get_key(ctx, m, path, "holidays", scalar(holidays_country))
    closed = get_key(ctx, m, path, "closed", c_list(c_date, allow_single=False), ())
    if not valid(tz, hours, country, closed):
        return INVALID
    return CalendarConfig(
        name=name,
        timezone=tz,
        hours=hours,
        holidays=country[0] if country else None,
        holiday_subdivision=country[1] if country else None,
        closed=frozenset(closed),
    )


def _named_section(
    ctx: Ctx, raw: Mapping, key: str, build: Callable[[str, object, str], Any], required: bool
) -> dict[str, Any] | None:
    value = raw.get(key)
    if value is None:
        if required:
            ctx.error(key, "missing (required)" if key not in raw else "has no value (required)")
            return None
        return {}
    m = mapping(ctx, value, key)
    if m is None:
        return None
    out: dict[str, Any] = {}
    for name, entry in m.items():
        if not isinstance(name, str) or not name.strip():
            ctx.error(join_path(key, name), f"expected a name, got {show(name)}")
            continue
        out[name] = build(name, entry, join_path(key, name))
    return out


# --------------------------------------------------------------------------- policies

def _policy(ctx: Ctx, name: str, value: object, path: str, calendars: Mapping | None) -> Any:
    m = mapping(ctx, value, path)
    if m is None:
        return INVALID
    check_keys(ctx, m, path, POLICY_KEYS)
    window = get_key(ctx, m, path, "window", c_positive_duration, REQUIRED)
    clock = get_key(ctx, m, path, "clock", c_enum("business", "calendar"), REQUIRED)
    calendar = get_key(ctx, m, path, "calendar", c_str)
    default_nudge = default_of(Policy, "nudge_before")
    nudge_before = get_key(ctx, m, path, "nudge_before", c_duration, default_nudge)
    escalate_after = get_key(ctx, m, path, "escalate_after", c_duration)
    if clock == "business" and calendar is None:
        ctx.error(join_path(path, "calendar"), "missing (required for clock: business)")
        calendar = INVALID
    if isinstance(calendar, str) and calendars is not None and calendar not in calendars:
        ctx.error(join_path(path, "calendar"), unknown_name("calendar", calendar, calendars))
        calendar = INVALID
    if valid(window, nudge_before) and nudge_before >= window:
        default = "" if "nudge_before" in m else f" (the default {format_duration(default_nudge)})"
        ctx.error(
            join_path(path, "nudge_before"),
            f"must be shorter than the window ({format_duration(window)}), "
            f"got {format_duration(nudge_before)}{default}",
        )
        nudge_before = INVALID
    if not valid(window, clock, calendar, nudge_before, escalate_after):
        return INVALID
    return Policy(
        name=name,
        window=window,
        clock=clock,
        calendar=calendar,
        nudge_before=nudge_before,
        escalate_after=escalate_after,
    )

def _absence(ctx: Ctx, value: object, path: str) -> Any:
    m = mapping(ctx, value, path)
    if m is None:
        return INVALID
    check_keys(ctx, m, path, ("from", "until"))
    start = get_key(ctx, m, path, "from", c_date, REQUIRED)
    until = get_key(ctx, m, path, "until", c_date, REQUIRED)
    if not valid(start, until):
        return INVALID
    if until < start:
        ctx.error(join_path(path, "until"), f"{until.isoformat()} is before from ({start.isoformat()})")
        return INVALID
    return Absence(start=start, until=until)


def _accounts(ctx: Ctx, value: object, calendars: Mapping | None) -> tuple[Any, set[str] | None]:
    """(accounts, their valid email addresses for reference checks; None if unknown)."""
    if value is None:
        return (), set()
    if not isinstance(value, list):
        ctx.error("accounts", f"expected a list of accounts, got {show(value)}")
        return INVALID, None
    problems_before = len(ctx.problems)
    parsed: list[tuple[str, dict[str, Any]]] = []
    for i, entry in enumerate(value):
        path = f"accounts[{i}]"
        m = mapping(ctx, entry, path)
        if m is None:
            continue
        check_keys(ctx, m, path, ACCOUNT_KEYS)
        fields = {
            "email": get_key(ctx, m, path, "email", c_address, REQUIRED),
            "name": get_key(ctx, m, path, "name", c_str, REQUIRED),
            "manager": get_key(ctx, m, path, "manager", c_address),
            "backup": get_key(ctx, m, path, "backup", c_address),
            "mentor": get_key(ctx, m, path, "mentor", c_address),
            "language": get_key(
                ctx, m, path, "language", c_language, default_of(Account, "language")
            ),
            "calendar": get_key(ctx, m, path, "calendar", c_str),
            "away": get_key(ctx, m, path, "away", c_list(_absence, allow_single=False), ()),
        }
        parsed.append((path, fields))

    first_path: dict[str, str] = {}
    for path, f in parsed:
        email = f["email"]
        if isinstance(email, str):
            if email in first_path:
                ctx.error(
                    join_path(path, "email"), f"duplicate account {email} (also {first_path[email]})"
                )
            else:
                first_path[email] = path
    for path, f in parsed:
        email, manager, backup, calendar = f["email"], f["manager"], f["backup"], f["calendar"]
        if isinstance(manager, str) and manager == email:
            ctx.error(join_path(path, "manager"), "an account cannot be its own manager")
        if isinstance(f["mentor"], str) and f["mentor"] == email:
            ctx.error(join_path(path, "mentor"), "an account cannot be its own mentor")
        if isinstance(backup, str):
            if backup == email:
                ctx.error(join_path(path, "backup"), "an account cannot be its own backup")
            elif backup not in first_path:
                ctx.error(
                    join_path(path, "backup"),
                    f"{backup} is not one of the accounts (a backup must be an account)"
                    + suggest(backup, [e for e in first_path if e != email], 0.85),
                )
        if isinstance(calendar, str) and calendars is not None and calendar not in calendars:
            ctx.error(
                join_path(path, "calendar"),
                unknown_name("calendar", calendar, calendars),
            )
    if len(ctx.problems) > problems_before:
        return INVALID, set(first_path)
    return tuple(Account(**f) for _, f in parsed), set(first_path)


# --------------------------------------------------------------------------- clients


def _clients(
    ctx: Ctx, value: object, policies: Mapping | None, account_emails: set[str] | None
) -> Any:
    if value is None:
        return ()
    if not isinstance(value, list):
        ctx.error("clients", f"expected a list of clients, got {show(value)}")
        return INVALID
    names: dict[str, str] = {}
    matched_by: dict[str, str] = {}
    out: list[Any] = []
    for i, entry in enumerate(value):
        path = f"clients[{i}]"
        m = mapping(ctx, entry, path)
        if m is None:
            out.append(INVALID)
            continue
        check_keys(ctx, m, path, ("name", "match", "policy", "account"))
        name = get_key(ctx, m, path, "name", c_str, REQUIRED)
        match = get_key(ctx, m, path, "match", c_list(c_pattern, non_empty=True), REQUIRED)
        policy = get_key(ctx, m, path, "policy", c_str, default_of(Client, "policy"))
        account = get_key(ctx, m, path, "account", c_address)
        if isinstance(name, str):
            if name in names:
                ctx.error(
                    join_path(path, "name"), f"duplicate client {show(name)} (also {names[name]})"
                )
            names.setdefault(name, path)
        if valid(match):
            for j, pattern in enumerate(match):
                if pattern in matched_by:
                    ctx.error(
                        f"{path}.match[{j}]",
                        f"{show(pattern)} is already matched by {matched_by[pattern]}",
                    )
                matched_by.setdefault(pattern, f"client {show(name)} ({path})")
        if isinstance(policy, str) and policies is not None and policy not in policies:
            ctx.error(join_path(path, "policy"), unknown_name("policy", policy, policies))
            policy = INVALID
        if (
            isinstance(account, str)
            and account_emails is not None
            and account not in account_emails
        ):
            ctx.error(
                join_path(path, "account"),
                f"{account} is not one of the accounts" + suggest(account, account_emails, 0.85),
            )
            account = INVALID
        if valid(name, match, policy, account):
            out.append(Client(name=name, match=match, policy=policy, account=account))
        else:
            out.append(INVALID)
    return tuple(out) if valid(*out) else INVALID


# --------------------------------------------------------------------------- small sections


def _agency(ctx: Ctx, value: object) -> Any:
    if value is None:
        ctx.error("agency", "missing (required): the agency's domains and addresses")
        return INVALID
    m = mapping(ctx, value, "agency")
    if m is None:
        return INVALID
    check_keys(ctx, m, "agency", ("domains", "addresses", "form_senders", "trust"))
    domains = get_key(ctx, m, "agency", "domains", c_list(c_domain), ())
    addresses = get_key(ctx, m, "agency", "addresses", c_list(c_address), ())
    forms = get_key(ctx, m, "agency", "form_senders", c_list(c_address), ())
    trust = get_key(ctx, m, "agency", "trust", _trust, Trust())
    if not valid(domains, addresses, forms, trust):
        return INVALID
    return Agency(domains=domains, addresses=addresses, form_senders=forms, trust=trust)


def _trust(ctx: Ctx, value: object, path: str) -> Any:
    m = mapping(ctx, value, path)
    if m is None:
        return INVALID
    check_keys(ctx, m, path, ("inbox_agency_mail", "authserv_ids", "relays"))
    mode = get_key(
        ctx,
        m,
        path,
        "inbox_agency_mail",
        c_enum("verified", "trusted"),
        default_of(Trust, "inbox_agency_mail"),
    )
    ids = get_key(ctx, m, path, "authserv_ids", c_list(c_authserv_id), ())
    relays = get_key(ctx, m, path, "relays", c_list(c_relay), ())
    if not valid(mode, ids, relays):
        return INVALID
    return Trust(inbox_agency_mail=mode, authserv_ids=ids, relays=relays)



def _section(ctx: Ctx, raw: Mapping, key: str, cls: type, fields: Mapping[str, Conv]) -> Any:
    """An optional section whose keys map 1:1 onto dataclass fields with defaults."""
    value = raw.get(key)
    if value is None:
        return cls()
    m = mapping(ctx, value, key)
    if m is None:
        return INVALID
    check_keys(ctx, m, key, fields)
    values = {}
    for name, conv in fields.items():
        got = get_key(ctx, m, key, name, conv, _MISSING_FIELD)
        if got is not _MISSING_FIELD:
            values[name] = got
    if not valid(*values.values()):
        return INVALID
    return cls(**values)


_MISSING_FIELD: Any = object()


def _cluster(ctx: Ctx, raw: Mapping) -> Any:
    """``cluster``: the lease must outlast a few renewals, or a node that misses one
    loses its mailboxes."""
    cluster = _section(ctx, raw, "cluster", ClusterConfig,
                       {"lease": c_positive_duration, "renew": c_positive_duration})
    if valid(cluster) and cluster.renew * 2 > cluster.lease:
        ctx.error("cluster.renew", f"must be at most half of cluster.lease "
                  f"({format_duration(cluster.lease)}): a node renews several times a lease")
        return INVALID
    return cluster

def _digest(ctx: Ctx, value: object) -> Any:
    if value is None:
        return DigestConfig()
    m = mapping(ctx, value, "digest")
    if m is None:
        return INVALID
    check_keys(ctx, m, "digest", ("enabled", "when"))
    enabled = get_key(ctx, m, "digest", "enabled", c_bool, default_of(DigestConfig, "enabled"))
    default_when = (default_of(DigestConfig, "weekday"), default_of(DigestConfig, "time"))
    when = get_key(ctx, m, "digest", "when", c_weekly_time, default_when)
    if not valid(enabled, when):
        return INVALID
    return DigestConfig(enabled=enabled, weekday=when[0], time=when[1])

def _state_dir(ctx: Ctx, raw: Mapping, environ: Mapping[str, str]) -> Any:
    if raw.get("state_dir") is not None:
        return c_path(ctx, raw["state_dir"], "state_dir")
    from_systemd = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(from_systemd) if from_systemd else ctx.base / "state"


# --------------------------------------------------------------------------- the whole file


def build(ctx: Ctx, raw: Mapping, file: Path, environ: Mapping[str, str]) -> Config | None:
    check_keys(ctx, raw, "", TOP_KEYS)
    timezone = get_key(ctx, raw, "", "timezone", c_timezone, REQUIRED)
    state_dir = _state_dir(ctx, raw, environ)
    agency = _agency(ctx, raw.get("agency"))

    calendars = _named_section(
        ctx, raw, "calendars", lambda n, v, p: _calendar(ctx, n, v, p, timezone), required=False
    )
    policies = _named_section(
        ctx, raw, "policies", lambda n, v, p: _policy(ctx, n, v, p, calendars), required=True
    )
    if policies is not None and "default" not in policies:
        ctx.error(
            "policies",
            'a policy named "default" is required (it applies to unknown senders and to '
            "clients without a policy)",
        )
    accounts, account_emails = _accounts(ctx, raw.get("accounts"), calendars)
    clients = _clients(ctx, raw.get("clients"), policies, account_emails)
    unknown = get_key(ctx, raw, "", "unknown_senders", c_enum("track", "ignore"), UNKNOWN_SENDERS)
    apps = oauth2apps.apps(ctx, raw.get("oauth2_apps"))
    known_apps = apps if valid(apps) else None
    mailboxes = connections.mailboxes(ctx, raw.get("mailboxes"), known_apps)
    smtp = connections.smtp(ctx, raw.get("smtp"), known_apps)
    database = connections.database(ctx, raw.get("database"))
    ignore = _section(
        ctx, raw, "ignore", IgnoreRules, {"senders": c_list(c_pattern), "subjects": c_list(c_regex)}
    )
    sync = _section(
        ctx,
        raw,
        "sync",
        SyncConfig,
        {
            "backfill": c_duration,
            "poll_interval": c_positive_duration,
            "idle": c_bool,
            "watch_sent": c_enum("auto", "idle", "poll"),
            "batch_size": c_int_range(1, 100_000),
            "command_deadline": c_positive_duration,
            "mailbox_deadline": c_positive_duration,
        },
    )
    notify = _section(
        ctx,
        raw,
        "notify",
        NotifyConfig,
        {
            "batch_window": c_duration,
            "max_per_hour": c_int_range(1),
            "templates_dir": c_path,
            "out_of_office_lookback": c_duration,
            "retry_initial": c_positive_duration,
            "recheck_grace": c_duration,
        },
    )
    log = _section(
        ctx,
        raw,
        "log",
        LogConfig,
        {
            "level": c_enum(
                "debug", "info", "warning", "error", "critical", hints={"warn": "warning"}
            ),
            "subjects": c_bool,
        },
    )
    digest = _digest(ctx, raw.get("digest"))
    metrics = _section(ctx, raw, "metrics", MetricsConfig, {"listen": c_listen})
    cluster = _cluster(ctx, raw)
    board = web.web(ctx, raw, account_emails)
    promise = _section(
        ctx,
        raw,
        "promise",
        PromiseConfig,
        {
            "enabled": c_bool,
            "remind_before": c_duration,
            "ask_for_date": c_bool,
            "ask_grace": c_duration,
        },
    )
    keyword = get_key(
        ctx, raw, "", "dismiss_keyword", c_keyword, default_of(Config, "dismiss_keyword")
    )
    subject_window = get_key(
        ctx,
        raw,
        "",
        "thread_subject_window",
        c_duration,
        default_of(Config, "thread_subject_window"),
    )

    if ctx.problems:
        return None
    assert calendars is not None and policies is not None
    return Config(
        path=file,
        timezone=timezone,
        state_dir=state_dir,
        agency=agency,
        calendars=MappingProxyType(dict(calendars)),
        policies=MappingProxyType(dict(policies)),
        accounts=accounts,
        clients=clients,
        unknown_senders=unknown,
        mailboxes=mailboxes,
        smtp=smtp,
        database=database,
        ignore=ignore,
        sync=sync,
        notify=notify,
        log=log,
        digest=digest,
        metrics=metrics,
        cluster=cluster,
        promise=promise,
        web=board,
        dismiss_keyword=keyword,
        thread_subject_window=subject_window,
        oauth2_apps=MappingProxyType(dict(apps)),
    )
