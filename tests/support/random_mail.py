"""Random mail for the property tests of re-evaluation (tests/daemon/test_scope.py) and of
batched thread finding (tests/store/test_linked_batches.py): a hypothesis strategy for one
mail's fields, the people who write it, and the mail as a watcher fetches it."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from ackwatch.mail.uidfetch import FetchedMessage

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)

JAN = "Jan Kowalski <jan.kowalski@acme.example>"
MARTA = "Marta Zielinska <marta.zielinska@globex.example>"
ANNA = "Anna Nowak <anna@agency.example>"
PIOTR = "Piotr Wisniewski <piotr@agency.example>"

# One mail, as tests/daemon/test_scope.py and tests/store/test_linked_batches.py build it.
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


def fetched(spec: tuple, uid: int) -> tuple[str, str, FetchedMessage]:
    """(mailbox, folder, the mail as the watcher fetches it): a client's mail lands in
    the INBOX of the mailbox it was sent to, the agency's in the sender's Sent."""
    mid, refs, subject, sender, hours, thrid, flags, mailbox = spec
    received = T0 + dt.timedelta(hours=hours)
    agency = sender in (ANNA, PIOTR)
    to = JAN if agency else (ANNA if mailbox == "anna" else PIOTR)
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}",
             f"Date: {received.strftime('%a, %d %b %Y %H:%M:%S +0000')}"]
    if hours % 3 == 0:
        lines.append(f"Cc: {MARTA}")
    if mid is not None:
        lines.append(f"Message-ID: {f'<u{uid}@x>' if mid == 'auto' else mid}")
    if refs:
        lines += [f"In-Reply-To: {refs[-1]}", f"References: {' '.join(refs)}"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    folder = "Sent" if agency else "INBOX"
    return mailbox, folder, FetchedMessage(uid, received, frozenset(flags), head, thrid)
