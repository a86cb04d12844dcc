"""Reading the config file: `load_config` reads the one YAML file, rejects duplicate
keys, and hands the mapping to `sections.build`; every problem found on the way is
raised together as one `ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from ackwatch.config import sections
from ackwatch.config.model import Config
from ackwatch.config.problems import ConfigError, Ctx, Problem, show

DEFAULT_CONFIG_PATH = Path("/etc/ackwatch/config.yaml")


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the YAML config file at ``path``; return a frozen `Config`.

    Raises one `ConfigError` carrying every problem found (an unreadable or missing file,
    invalid YAML, unknown keys with a "did you mean" hint, wrong types, missing required
    keys, bad references between sections, ...). The file is the only thing read: secrets
    are kept as `SecretRef` and resolved later (`ackwatch.credentials`).

    Required: ``timezone``, ``agency``, ``policies`` (with a ``default`` policy) and a
    non-empty ``mailboxes`` list. Every other key has a default: the values are the
    model's (`schema.DEFAULTS` lists them by key path); the rest are rules:

    - ``state_dir``: ``$STATE_DIRECTORY`` (its first entry; set by systemd's
      StateDirectory=), else ``state`` next to the config file.
    - Relative paths (``state_dir``, ``password_file``, ``ca_file``,
      ``notify.templates_dir``) are relative to the directory of the config file, not to
      the working directory, and ``~`` is expanded.
    - ``calendars``, ``accounts``, ``clients``: empty; ``smtp``: none (nothing can be
      sent; check-config warns).
    - A calendar's ``timezone`` is the top-level one; days missing from ``hours`` are
      closed. An account's ``calendar`` is the first calendar; a mailbox's ``owner`` its
      ``username``; a connection's ``port`` follows its ``security``.
    - A policy's ``nudge_before`` must be shorter than its ``window``; ``escalate_after``
      absent or null means "never escalate", ``0m`` "at the deadline".

    Addresses, domains and sender globs are lower-cased; subject regexes are compiled
    case-insensitive.
    """
    env = os.environ if environ is None else environ
    file = Path(path).expanduser()
    file = file if file.is_absolute() else Path.cwd() / file
    problem = None
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = "cannot read the config file: it does not exist"
    except IsADirectoryError:
        problem = "cannot read the config file: it is a directory"
    except PermissionError:
        problem = "cannot read the config file: permission denied"
    except UnicodeDecodeError as exc:
        problem = f"cannot read the config file: not UTF-8 text (byte {exc.start})"
    except OSError as exc:
        problem = f"cannot read the config file: {exc.strerror or exc}"
    if problem is not None:
        raise ConfigError(file, [Problem("", problem)])
    return _load_text(text, file, env)


def _load_text(text: str, file: Path, environ: Mapping[str, str]) -> Config:
    ctx = Ctx(file.parent)
    try:
        loader = _YamlLoader(text)
        try:
            raw = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(file, [Problem("", _yaml_error(exc))]) from None
    for key, line in loader.duplicates:
        ctx.error("", f"line {line}: duplicate key {show(key)} (only the last one would count)")
    if raw is None:
        ctx.error("", "the file is empty")
        raise ConfigError(file, ctx.problems)
    if not isinstance(raw, dict):
        ctx.error("", f"expected a mapping of settings at the top level, got {show(raw)}")
        raise ConfigError(file, ctx.problems)
    config = sections.build(ctx, raw, file, environ)
    if ctx.problems or config is None:
        raise ConfigError(file, ctx.problems)
    return config


# --------------------------------------------------------------------------- YAML


# (mypy cannot type a base class chosen when the module is imported)
class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader that remembers duplicate mapping keys (PyYAML silently keeps the last).

    libyaml's parser where PyYAML has it (its wheels do): the pure-Python one is slow to
    read a config of many mailboxes, and every command reads it (bench target 7b)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicates: list[tuple[object, int]] = []


def _construct_mapping(loader: _YamlLoader, node: yaml.MappingNode) -> dict:
    seen: set[object] = set()
    for key_node, _ in node.value:  # the keys written here (merged ``<<`` keys may repeat)
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:
                loader.duplicates.append((key, key_node.start_mark.line + 1))
            seen.add(key)
        except TypeError:  # unhashable key: construct_mapping reports it
            pass
    mapping: dict = loader.construct_mapping(node, deep=True)
    return mapping


_YamlLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {problem}"

