"""Positional constructors for frozen dataclasses: what ``__init__`` does, minus its cost.

A speed trick kept apart (with its oracle in tests/core/test_message_fast.py) so that the
bench can measure it: `message.parse_message`, `classify` and `item_rules` build their
values through it, as the IMAP reader builds its rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


def positional_constructor(cls: type) -> Callable[..., Any]:
    """A positional constructor of the frozen dataclass ``cls`` (every field given, in
    order): what its ``__init__`` does, minus the cost of that.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``
    (looked up anew for every field) and is called with keywords; for `Message`'s 29
    fields that is 5 us of a 25 us parse, on every copy a first sync fetches, and a
    first evaluation builds an `sla.Item` (12 fields, 1.4 us) for every client mail.
    This sets each slot through its descriptor, bound once, as dataclasses do, or each
    entry of the instance's ``__dict__`` for a class without slots: by generating the
    function (tests/core/test_message_fast.py compares it with ``__init__``). Refused for a
    class whose ``__init__`` does more: a ``__post_init__``, a field left out of it.
    """
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or not all(f.init for f in fields):
        raise TypeError(f"{cls.__name__}.__init__ does more than set its fields")
    names = tuple(f.name for f in fields)
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    if "__slots__" in cls.__dict__:
        body = []
        for i, name in enumerate(names):
            namespace[f"_set{i}"] = cls.__dict__[name].__set__
            body.append(f"    _set{i}(self, {name})\n")
    else:
        body = ["    d = self.__dict__\n", *(f"    d[{name!r}] = {name}\n" for name in names)]
    source = (
        f"def construct({', '.join(names)}):\n    self = _new(_cls)\n{''.join(body)}"
        "    return self\n"
    )
    exec(source, namespace)  # from field names only, as dataclasses does
    construct = namespace["construct"]
    construct.__qualname__ = f"{cls.__name__}.construct"
    return construct  # type: ignore[no-any-return]
