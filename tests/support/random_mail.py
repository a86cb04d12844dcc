"""Random mail for the property tests of re-evaluation (tests/test_scope.py) and of
batched thread finding (tests/test_linked_batches.py): a hypothesis strategy for one
mail's fields, and the people who write it."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)

JAN = "Jan Kowalski <jan.kowalski@acme.example>"
MARTA = "Marta Zielinska <marta.zielinska@globex.example>"
ANNA = "Anna Nowak <anna@agency.example>"
PIOTR = "Piotr Wisniewski <piotr@agency.example>"

# One mail, as tests/test_scope.py and tests/test_linked_batches.py build it.
MAIL_SPEC = st.tuples(
    st.sampled_from(["<a@x>", "<b@x>", "<c@x>", "<d@x>", "<e@x>", None, "auto"]),  # id
    st.lists(st.sampled_from(["<a@x>", "<b@x>", "<c@x>", "<p@x>", "junk"]), max_size=3),
    st.sampled_from(["Quote", "Re: Quote", "RE: Other", "Other", "Fwd: Quote", "hi"]),
    st.sampled_from([JAN, MARTA, ANNA, PIOTR]),  # sender
    st.integers(min_value=0, max_value=40 * 24),  # hours after T0
    st.sampled_from([None, 1, 2]),  # X-GM-THRID
    st.sampled_from([(), ("\\Answered",), ("$Ackwatch-Done",)]),
    st.sampled_from(["anna", "piotr"]),  # mailbox
)
