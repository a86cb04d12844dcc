"""Threads: ids first, then Thread-Index, X-GM-THRID, subject + participant (DESIGN.md)."""

from __future__ import annotations

import datetime as dt
import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackwatch.core import subjects
from ackwatch.core.classify import agency_identities
from ackwatch.core.message import Message
from ackwatch.core.subjects import has_reply_prefix, is_trivial_subject, normalize_subject
from ackwatch.core.threads import assign_threads
from configfactory import make_config
from mailfactory import fixture_message, mail, reply

AGENCY = agency_identities(make_config())
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def at(minutes: float = 0, days: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes, days=days)


def threads(*messages: Message, **kw: object) -> dict[str, str]:
    kw.setdefault("agency_addresses", AGENCY)
    return dict(assign_threads(messages, **kw))  # type: ignore[arg-type]


def same_thread(result: dict[str, str], *messages: Message) -> bool:
    return len({result[m.key] for m in messages}) == 1


# --------------------------------------------------------------------------- subjects


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Quote",
        "RE: Quote",
        "re:Quote",
        "Fwd: Quote",
        "Fw: Quote",
        "FW: Quote",
        "AW: Quote",
        "WG: Quote",
        "Odp: Quote",
        "PD: Quote",
        "Re[2]: Quote",
        "Re(3): Quote",
        "RE: AW: Fwd: Quote",
        "Відп: Quote",
        "Отв: Quote",
        "Отг: Quote",
        "Пересл: Quote",
        "ПП: Quote",
        "SV: Quote",
        "VS: Quote",
        "Vs: Quote",
        "Antw: Quote",
        "Doorst: Quote",
        "RV: Quote",
        "TR: Quote",
        "RE : Quote",
        "TR : Quote",
        "R: Quote",
        "I: Quote",
        "Rif: Quote",
        "Réf: Quote",
        "Tr: Quote",
        "Enc: Quote",
        "Ynt: Quote",
        "Ref: Quote",
        "[EXTERNAL] Quote",
        "[EXT] RE: Quote",
        "[acme-team] Re: Quote",
        "Re: [acme-team] Quote",
        "Quote (fwd)",
        "  RE:   re:  QUOTE  ",
        "回复：Quote",
        "Re: Re: Re: Re: Re: Quote",
    ],
)
def test_normalize_subject_strips_reply_and_forward_prefixes(subject: str):
    assert normalize_subject(subject) == "quote"


def test_normalize_subject_keeps_tags_with_numbers():
    assert normalize_subject("Re: [Ticket #123] Printer") == "[ticket #123] printer"


def test_normalize_subject_keeps_words_that_only_start_like_prefixes():
    assert normalize_subject("Research plan") == "research plan"
    assert normalize_subject("Reuse: old banners") == "reuse: old banners"


def test_normalize_subject_folds_whitespace_and_casefolds():
    assert (
        normalize_subject("Odp:  Wycena   KAMPANII  Świątecznej") == "wycena kampanii świątecznej"
    )
    assert normalize_subject("Straße") == normalize_subject("STRASSE")


@pytest.mark.parametrize(
    "subject", ["", "Re:", "RE: RE:", "hi", "Re: Hi", "ok", "Fwd: (no subject)"]
)
def test_trivial_subjects_never_thread(subject: str):
    assert is_trivial_subject(normalize_subject(subject))


def _reference_normalize(subject: str) -> str:
    """`normalize_subject` as written first: the trailing "(fwd)" tried in every round."""
    text = " ".join(unicodedata.normalize("NFKC", subject or "").split())
    for _ in range(200):
        stripped = subjects._TRAILING_FWD.sub("", subjects._PREFIX.sub("", text, count=1))
        if stripped == text:
            break
        text = stripped
    return " ".join(text.split()).casefold()


def _reference_reply_prefix(subject: str) -> bool:
    text = " ".join(unicodedata.normalize("NFKC", subject or "").split())
    for _ in range(20):
        if subjects._REPLY_MARK.match(text) or subjects._TRAILING_FWD.search(text):
            return True
        stripped = subjects._PREFIX.sub("", text, count=1)
        if stripped == text:
            return False
        text = stripped
    return False


_SUBJECT_PARTS = st.sampled_from(
    ["Re:", "RE :", "Fwd:", "AW:", "Odp:", "[acme]", "[Ticket #1]", "(fwd)", "(FW)", "( fwd )",
     "Quote", "Wycena", "(v2)", "(fwd) x", ")", "(", " ", "\t", "\n", "\u3000", "：", "*EXTERNAL*",
     # marks that only NFKC makes marks: small colon, fullwidth (, [ and *
     "\ufe55", "\uff08fwd\uff09", "\uff3bacme\uff3d", "\uff0aEXTERNAL\uff0a"]
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.lists(_SUBJECT_PARTS, max_size=8).map("".join),
                 st.lists(_SUBJECT_PARTS, max_size=8).map(" ".join), st.text(max_size=40)))
def test_subject_rules_do_what_they_did_before_the_trailing_check(subject: str):
    assert normalize_subject(subject) == _reference_normalize(subject)
    assert has_reply_prefix.__wrapped__(subject) == _reference_reply_prefix(subject)


def test_has_reply_prefix():
    assert has_reply_prefix("[EXTERNAL] RE: Quote")
    assert has_reply_prefix("Quote (fwd)")
    assert not has_reply_prefix("Quote for the spring campaign")
    assert not has_reply_prefix("Research plan")
    assert has_reply_prefix("Re\ufe55 Quote")  # a small colon is a colon after NFKC
    assert normalize_subject("Odp\ufe55 \uff3bacme\uff3d Wycena") == "wycena"


# --------------------------------------------------------------------------- id links


def test_outlook_conversation_with_apple_mail_reply_is_one_thread():
    client = fixture_message("outlook_client.eml", received=at(0))
    answer = fixture_message(
        "outlook_agency_reply.eml", folder="Sent Items", role="sent", received=at(43)
    )
    follow_up = fixture_message("apple_mail_reply.eml", received=at(64))
    ooo = fixture_message("exchange_out_of_office.eml", received=at(44))
    result = threads(client, answer, follow_up, ooo)
    assert same_thread(result, client, answer, follow_up, ooo)
    assert result[client.key] == client.key  # the thread is named after its first mail


def test_gmail_and_thunderbird_conversation_is_one_thread():
    a = fixture_message("gmail_client.eml", mailbox="piotr", received=at(0))
    b = fixture_message("gmail_agency_reply.eml", mailbox="piotr", role="sent", received=at(60))
    c = fixture_message("thunderbird_reply.eml", mailbox="piotr", received=at(80))
    v = fixture_message("gmail_vacation_responder.eml", mailbox="piotr", received=at(90))
    assert same_thread(threads(a, b, c, v), a, b, c, v)


def test_one_mail_in_two_mailboxes_is_one_key_and_one_thread():
    in_anna = fixture_message("cc_two_mailboxes.eml", mailbox="anna", uid=3)
    in_piotr = fixture_message("cc_two_mailboxes.eml", mailbox="piotr", uid=9)
    result = threads(in_anna, in_piotr)
    assert result == {in_anna.key: in_anna.key}


def test_two_replies_to_unseen_parent_share_a_thread():
    r1 = mail(
        from_="jan@acme.example",
        subject="Re: A",
        in_reply_to="<unseen@acme.example>",
        received=at(0),
    )
    r2 = mail(
        from_="anna@agency.example",
        to="ola@other.example",
        subject="Re: B",
        references=["<root@x.example>", "<unseen@acme.example>"],
        received=at(5),
    )
    assert same_thread(threads(r1, r2), r1, r2)


def test_unrelated_mails_are_separate_threads():
    a = mail(subject="Quote for the spring campaign", received=at(0))
    b = mail(from_="marta@globex.example", subject="Banner sizes", received=at(1))
    result = threads(a, b)
    assert result[a.key] != result[b.key]


def test_reference_loops_terminate():
    a = mail(message_id="<a@x.example>", references=["<b@x.example>"], received=at(0))
    b = mail(
        message_id="<b@x.example>", references=["<c@x.example>", "<a@x.example>"], received=at(1)
    )
    c = mail(message_id="<c@x.example>", in_reply_to="<a@x.example>", received=at(2))
    self_ref = mail(message_id="<s@x.example>", in_reply_to="<s@x.example>", received=at(3))
    result = threads(a, b, c, self_ref)
    assert same_thread(result, a, b, c)


def test_very_long_reply_chain_needs_no_recursion():
    chain = []
    parent = None
    for i in range(5000):
        m = mail(
            message_id=f"<m{i}@x.example>",
            subject=f"step {i}",
            in_reply_to=parent,
            references=[parent] if parent else [],
            received=at(i),
        )
        chain.append(m)
        parent = m.message_id
    result = threads(*reversed(chain))
    assert set(result.values()) == {"<m0@x.example>"}


def test_reused_message_id_is_tolerated():
    a = mail(message_id="<dup@broken.example>", subject="One", received=at(0))
    b = mail(message_id="<dup@broken.example>", subject="Two", received=at(5))
    assert threads(a, b) == {"<dup@broken.example>": "<dup@broken.example>"}


def test_junk_references_do_not_link_unrelated_mail():
    a = mail(subject="First topic", references=["garbage"], received=at(0))
    b = mail(from_="marta@globex.example", subject="Other topic", references=["<>"], received=at(1))
    result = threads(a, b)
    assert result[a.key] != result[b.key]


# --------------------------------------------------------------------------- fallbacks


def test_broken_mailer_reply_threads_by_subject_and_participant():
    client = fixture_message("outlook_client.eml", received=at(0))
    broken = fixture_message("broken_references_reply.eml", role="sent", received=at(80))
    assert same_thread(threads(client, broken), client, broken)


def test_outlook_thread_index_links_a_reply_without_references():
    client = fixture_message("outlook_client.eml", received=at(0))
    stripped = mail(
        from_="anna@agency.example",
        to="someone@else.example",
        subject="Totally different",
        headers={"Thread-Index": "Adtdjk8qPJp7Hl0vSmuMDR4vOktcbQobLD1O"},
        received=at(30),
    )
    assert same_thread(threads(client, stripped), client, stripped)


def test_gmail_thread_id_links_within_one_mailbox_only():
    a = mail(subject="Alpha", mailbox="piotr", gm_thrid=1780123456789, received=at(0))
    b = mail(
        from_="x@y.example", subject="Beta", mailbox="piotr", gm_thrid=1780123456789, received=at(5)
    )
    c = mail(
        from_="z@w.example", subject="Gamma", mailbox="anna", gm_thrid=1780123456789, received=at(6)
    )
    result = threads(a, b, c)
    assert same_thread(result, a, b)
    assert result[c.key] != result[a.key]


def test_subject_fallback_needs_a_shared_participant():
    original = mail(
        from_="jan@acme.example", subject="Quote for the spring campaign", received=at(0)
    )
    stranger = mail(
        from_="marta@globex.example", subject="Re: Quote for the spring campaign", received=at(30)
    )
    result = threads(original, stranger)
    # both wrote to anna, but anna is the agency: that is no shared participant
    assert result[original.key] != result[stranger.key]
    answer = mail(
        from_="anna@agency.example",
        to="jan@acme.example",
        subject="RE: Quote for the spring campaign",
        received=at(40),
    )
    assert same_thread(threads(original, answer), original, answer)


def test_subject_fallback_bounded_to_30_days():
    original = mail(subject="Quote for the spring campaign", received=at(0))
    late = mail(
        from_="anna@agency.example",
        to="jan.kowalski@acme.example",
        subject="Re: Quote for the spring campaign",
        received=at(days=31),
    )
    in_time = mail(
        from_="anna@agency.example",
        to="jan.kowalski@acme.example",
        subject="Re: Quote for the spring campaign",
        received=at(days=29),
    )
    assert threads(original, late)[late.key] == late.key
    assert same_thread(threads(original, in_time), original, in_time)
    assert same_thread(
        threads(original, late, subject_window=dt.timedelta(days=40)), original, late
    )


def test_subject_fallback_only_starts_from_a_reply():
    first = mail(subject="Monthly report", received=at(0))
    second = mail(subject="Monthly report", received=at(days=3))
    result = threads(first, second)
    assert result[first.key] != result[second.key]


def test_trivial_subject_never_links_by_subject():
    a = mail(subject="Hi", received=at(0))
    b = mail(
        from_="anna@agency.example",
        to="jan.kowalski@acme.example",
        subject="Re: hi",
        received=at(10),
    )
    result = threads(a, b)
    assert result[a.key] != result[b.key]


def test_forward_without_in_reply_to_joins_by_subject():
    brief = mail(subject="Brief for the spring campaign", received=at(days=-2))
    fwd = fixture_message("forwarded_no_in_reply_to.eml", received=at(days=3))
    assert same_thread(threads(brief, fwd), brief, fwd)


def test_message_linked_by_ids_is_not_relinked_by_subject():
    t1 = mail(subject="Quote for the spring campaign", received=at(0))
    t1_reply = reply(t1, from_="jan.kowalski@acme.example", received=at(10))
    other = mail(subject="Quote for the spring campaign", received=at(days=2))
    other_reply = reply(other, from_="jan.kowalski@acme.example", received=at(days=2, minutes=5))
    result = threads(t1, t1_reply, other, other_reply)
    assert result[t1.key] != result[other.key]


def test_without_agency_addresses_every_participant_counts():
    a = mail(from_="jan@acme.example", subject="Quote", received=at(0))
    b = mail(from_="marta@globex.example", subject="Re: Quote", received=at(1))
    assert same_thread(threads(a, b, agency_addresses=None), a, b)


# --------------------------------------------------------------------------- determinism


def test_thread_id_stays_when_a_later_reply_arrives():
    original = mail(message_id="<zzz@acme.example>", received=at(0))
    before = threads(original)
    answer = reply(original, message_id="<aaa@agency.example>", received=at(30))
    after = threads(original, answer)
    assert before[original.key] == after[original.key] == after[answer.key]


def _pool() -> list[Message]:
    """A tangle of every kind of link, for the permutation test."""
    ms: list[Message] = []
    ms.append(fixture_message("outlook_client.eml", received=at(0)))
    ms.append(fixture_message("outlook_agency_reply.eml", role="sent", received=at(43)))
    ms.append(fixture_message("apple_mail_reply.eml", received=at(64)))
    ms.append(fixture_message("broken_references_reply.eml", role="sent", received=at(80)))
    ms.append(fixture_message("outlook_internal_forward.eml", role="sent", received=at(45)))
    ms.append(fixture_message("gmail_client.eml", mailbox="piotr", received=at(100)))
    ms.append(fixture_message("gmail_agency_reply.eml", mailbox="piotr", received=at(160)))
    ms.append(fixture_message("thunderbird_reply.eml", mailbox="piotr", received=at(170)))
    ms.append(fixture_message("cc_two_mailboxes.eml", mailbox="anna", received=at(200)))
    ms.append(fixture_message("cc_two_mailboxes.eml", mailbox="piotr", received=at(201)))
    ms.append(fixture_message("forwarded_no_in_reply_to.eml", received=at(300)))
    ms.append(mail(subject="Brief for the spring campaign", received=at(250)))
    ms.append(mail(subject="Re: Brief for the spring campaign", received=at(250)))  # time tie
    ms.append(mail(subject="Re: X", in_reply_to="<ghost@x.example>", received=at(5)))
    ms.append(mail(subject="Re: Y", references=["<ghost@x.example>"], received=at(6)))
    ms.append(mail(message_id="<l1@x.example>", references=["<l2@x.example>"], received=at(7)))
    ms.append(mail(message_id="<l2@x.example>", references=["<l1@x.example>"], received=at(7)))
    ms.append(mail(subject="G1", gm_thrid=42, mailbox="piotr", received=at(8)))
    ms.append(mail(subject="G2", gm_thrid=42, mailbox="piotr", received=at(9)))
    ms.append(mail(message_id=None, subject="No id", received=at(10)))
    return ms


POOL = _pool()


@settings(max_examples=200, deadline=None)
@given(st.permutations(POOL))
def test_threading_is_independent_of_arrival_order(messages: list[Message]):
    assert threads(*messages) == threads(*POOL)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["<a@x>", "<b@x>", "<c@x>", "<d@x>", None]),  # message id
            st.lists(st.sampled_from(["<a@x>", "<b@x>", "<c@x>", "<p@x>", "junk"]), max_size=3),
            st.sampled_from(["Quote", "Re: Quote", "RE: Other", "Other", "hi"]),
            st.sampled_from(["jan@acme.example", "marta@globex.example", "anna@agency.example"]),
            st.integers(min_value=0, max_value=60),  # days
            st.sampled_from([None, 1, 2]),  # gm_thrid
        ),
        max_size=10,
    ),
    st.randoms(use_true_random=False),
)
def test_random_tangles_are_order_independent(specs, rnd):
    ms = [
        mail(
            message_id=mid,
            references=refs,
            subject=subj,
            from_=sender,
            to="anna@agency.example" if sender != "anna@agency.example" else "jan@acme.example",
            received=at(days=days),
            gm_thrid=thr,
            mailbox="anna",
        )
        for mid, refs, subj, sender, days, thr in specs
    ]
    shuffled = list(ms)
    rnd.shuffle(shuffled)
    assert threads(*shuffled) == threads(*ms)
    # every thread id is the key of a message of that thread
    result = threads(*ms)
    assert set(result.values()) <= set(result)


def test_many_mails_with_one_subject_stay_fast():
    ms = [
        mail(
            from_=f"c{i % 50}@client{i % 50}.example",
            subject="Re: Invoice question",
            received=at(minutes=i),
        )
        for i in range(3000)
    ]
    start = time.perf_counter()
    result = threads(*ms)
    assert time.perf_counter() - start < 5
    assert len(set(result.values())) == 50  # one per client: the subject alone joins nothing
