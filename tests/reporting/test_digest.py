"""The weekly digest: in the manager's language (en, pl, uk, bg, chosen as for every queued
mail), an HTML part that Gmail and Outlook keep (tables and inline CSS: no SVG, no style
block, no flexbox or grid, nothing fetched), and per client demand beside the service
level with every client below the target named, however few its mails."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from tests.support.digest_week import (
    HOSTILE_CLIENT,
    NOW,
    SINCE,
    UNTIL,
    config_with,
    parts,
    render,
    reports,
)

from ackwatch.config.model import NotifyConfig
from ackwatch.mail.templates import plural_category
from ackwatch.reporting import digest
from ackwatch.reporting.figures import compute
from configfactory import ANNA, KASIA

LANGUAGES = ("en", "pl", "uk", "bg")
TEMPLATES = resources.files("ackwatch") / "templates"


def strings(language: str) -> dict:
    return tomllib.loads((TEMPLATES / language / "strings.toml").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- language


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_digest_is_in_the_managers_language(language):
    words = strings(language)["digest"]
    msg = render(config_with(language))
    text, page = parts(msg)
    assert msg["Content-Language"] == language
    assert f'<html lang="{language}">' in page
    assert msg["Subject"].startswith(words["subject"].split("$")[0].strip())
    for key in ("by_client", "footer"):
        assert words[key] in text
        assert words[key].replace("'", "&#x27;") in page
    assert words["greeting"].replace("$name", "Kasia Lewandowska") in text


MENTOR = "mentor@agency.example"


def mentored_by(config, mentor: str, *accounts: str, language: str | None = None):
    """``config`` with ``mentor`` as the mentor of ``accounts`` (speaking ``language``)."""
    return dataclasses.replace(config, accounts=tuple(
        dataclasses.replace(a, mentor=mentor, language=language or a.language)
        if a.email in accounts else a for a in config.accounts))


def intro_of(language: str, key: str) -> str:
    """The words of ``[digest] key`` before the week is named."""
    return strings(language)["digest"][key].split("$week")[0]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_mentor_who_manages_none_of_the_accounts_is_told_about_the_people_they_mentor(
        language):
    msg = render(mentored_by(config_with(language), MENTOR, ANNA, language=language), MENTOR)
    text, page = parts(msg)
    assert msg["Content-Language"] == language
    mentor, team = intro_of(language, "intro_mentor"), intro_of(language, "intro")
    assert mentor in text and mentor.replace("'", "&#x27;") in page
    assert team not in text and team.replace("'", "&#x27;") not in page


def test_a_manager_who_also_mentors_is_told_about_the_team():
    config = mentored_by(config_with("en"), KASIA, ANNA)  # Kasia manages Anna and Piotr
    text, _ = parts(render(config, KASIA))
    assert intro_of("en", "intro") in text and intro_of("en", "intro_mentor") not in text


def test_week_and_durations_are_in_the_language_too():
    text, _ = parts(render(config_with("pl")))
    assert "tydzień od pon. 16 lis 2026" in text
    assert re.search(r"mediana potwierdzenia\s+\d+ godz\. \d+ min", text)
    assert "2 maile od klientów" in text and "1 mail od klienta" in text


def test_a_manager_who_is_no_account_gets_the_language_of_the_team():
    msg = render(config_with(None))  # Kasia manages Anna and Piotr (both pl)
    assert msg["Content-Language"] == "pl"
    assert parts(msg)[0].startswith("Dzień dobry, kasia,")


@pytest.mark.parametrize("language", ["de", "", "PL-pl"])
def test_an_unknown_language_falls_back_to_english_and_a_region_is_ignored(language):
    msg = render(config_with(language))
    assert msg["Content-Language"] == ("pl" if language == "PL-pl" else "en")


def test_an_override_directory_changes_a_digest_phrase(tmp_path: Path):
    (tmp_path / "pl").mkdir()
    (tmp_path / "pl" / "strings.toml").write_text(
        '[digest]\ngreeting = "Cześć $name!"\n', encoding="utf-8")
    config = config_with("pl", notify=NotifyConfig(templates_dir=tmp_path))
    text, _ = parts(render(config))
    assert text.startswith("Cześć Kasia Lewandowska!")
    assert "Poziom obsługi według opiekuna" in text  # the rest from the package


def test_no_language_misses_a_phrase():
    """Every key of the English strings (the digest's and every mail's) is in every
    language, with the same placeholders; plural tables have each category the language
    uses."""
    def flat(table: dict, prefix: str = "") -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in table.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    plural_tables = ("emails.", "promises.")
    english = {k: v for k, v in flat(strings("en")).items() if not k.startswith(plural_tables)}
    assert sum(k.startswith("digest.") for k in english) >= 25
    for language in LANGUAGES[1:]:
        words = flat(strings(language))
        missing = sorted(set(english) - set(words))
        assert missing == [], f"{language} misses {missing}"
        for key, value in english.items():
            if isinstance(value, str):
                assert set(re.findall(r"\$(\w+)", words[key])) == set(  # type: ignore[arg-type]
                    re.findall(r"\$(\w+)", value)), f"{language}: {key}"
        for table in plural_tables:
            forms = {k for k in words if k.startswith(table)}
            needed = {table + plural_category(language, n) for n in range(200)}
            assert needed <= forms, f"{language}: {table} needs {needed - forms}"


def test_every_digest_phrase_is_translated():
    english = strings("en")["digest"]
    for language in LANGUAGES[1:]:
        same = [k for k, v in strings(language)["digest"].items()
                if v == english[k] and k != "date"]
        assert same == [], f"{language} still English: {same}"


# --------------------------------------------------------------------------- html


@pytest.fixture(scope="module")
def page() -> str:
    return parts(render(config_with("en")))[1]


def test_the_html_has_no_svg_no_style_block_and_nothing_gmail_drops(page):
    lowered = page.lower()
    for dropped in ("<svg", "<style", "<script", "<img", "<link", "display:flex",
                    "display:grid", "position:", "url(", "src=", "var(--"):
        assert dropped not in lowered, dropped


def test_the_layout_is_tables_with_widths_on_their_cells(page):
    assert page.count("<table") >= 10
    widths = re.findall(r'<td[^>]*\bwidth="(\d+)(%?)"', page)
    assert len(widths) > 30
    assert all(unit == "%" or int(value) <= 640 for value, unit in widths)


def test_a_bar_is_a_cell_whose_width_is_the_service_level(page):
    bars = re.findall(r'<td class="bar level" width="(\d+)%"', page)
    # accounts (Piotr 95%, Anna 93%), then clients: 97, 100, 50, 100; gmail.com 0%: track
    assert bars == ["95", "93", "97", "100", "50", "100"]
    assert 'class="bar level" width="50%" bgcolor="#dc2626"' in page  # under: red


def test_demand_bars_are_relative_to_the_busiest_client(page):
    demand = re.findall(r'<td class="bar demand" width="(\d+)%"', page)
    assert demand == ["100", "33", "6", "3", "3"]  # 36, 12, 2, 1, 1 of 36


def test_a_client_name_with_markup_is_text(page):
    assert "&lt;b&gt;Bold &amp; Co&lt;/b&gt;" in page
    assert HOSTILE_CLIENT not in page


# --------------------------------------------------------------------------- small clients


def test_the_digest_names_a_client_with_two_mails_and_one_late():
    text, page = parts(render(config_with("en")))
    below = text.split("Below the target (90%), however few their emails:\n")[1]
    assert [line.split()[0] for line in below.split("\n\n")[0].splitlines()] == [
        "gmail.com", "Sklep"]
    assert "Sklep Kwiatowy           50%  1 of 2 in time, 2 client emails" in below
    box = page.split('id="below-target"')[1].split("</table>")[0]
    assert "<strong>Sklep Kwiatowy</strong> 50% · 1 of 2 in time · 2 client emails" in box
    assert "Globex" not in box


def test_demand_and_service_level_stand_side_by_side_per_client():
    text, _ = parts(render(config_with("en")))
    rows = text.split("Demand and service level by client\n")[1].split("\n\n")[0]
    assert rows.splitlines()[0].split() == ["Globex", "36", "client", "emails", "97%", "35",
                                            "of", "36", "in", "time"]
    assert "Sklep Kwiatowy         2 client emails          50%  1 of 2 in time !" in rows


def test_an_empty_week_says_so():
    config = config_with("bg")
    empty = compute([], config, since=SINCE, until=UNTIL, now=NOW)
    msg = digest.render(config, KASIA, empty, empty, smtp_from="a <a@agency.example>",
                        message_id="<d@agency.example>")
    text, page = parts(msg)
    assert strings("bg")["digest"]["no_mail"] in text and "<svg" not in page


def test_the_team_can_be_given_for_a_recipient_who_manages_no_one():
    config = config_with(None)
    this_week, before = reports(config)
    msg = digest.render(config, "mentor@agency.example", this_week, before,
                        smtp_from="a <a@agency.example>", message_id="<d@agency.example>",
                        team=(ANNA,))
    assert msg["Content-Language"] == "pl" and msg["To"] == "mentor@agency.example"
