"""`sgi privacy-scan`'s finder: every secret value of an inbound message is looked for as whole tokens,
found wherever it is planted, and never confused with a pseudonymous key or a count."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sgi.privacy_scan import Finder, scan, secret_values
from streams.core.ingest import pseudonym
from tests.unit.contract_builders import NHS_NUMBER, UPN

SENSITIVE = {
    "child": {"identifiers": [{"scheme": "nhs_number", "value": NHS_NUMBER}, {"scheme": "upn", "value": UPN},
                              {"scheme": "la_person_id", "value": "LA-000123"}], "birth_month": "2011-04"},
    "source": {"agency": "police", "record_ref": "CRN/2026/Jane Smith"},
    "location": {"postcode": "CV1 2GN", "premises": {"category": "home", "name": "The Smiths", "ref": "HOME-77"}},
    "payload": {"episode_ref": "MFH-2026-0001", "reason": "Uncle Bob said no", "indicators": ["seen with Mr Jones"]},
}


def finder() -> Finder:
    return Finder(secret_values(SENSITIVE))


def test_every_kind_of_secret_is_collected() -> None:
    kinds = {kind for kind, _ in secret_values(SENSITIVE)}
    assert kinds == {"identifier", "reference", "postcode", "free text"}
    assert len(finder()) >= 10


def test_a_planted_value_is_found_wherever_it_is() -> None:
    for planted in (NHS_NUMBER.replace(" ", ""), NHS_NUMBER, UPN.lower(), "la-000123", "CRN/2026/Jane Smith",
                    "cv12gn", "CV1 2GN", "The Smiths", "HOME-77", "MFH-2026-0001", "Uncle Bob said no",
                    "seen with Mr Jones"):
        text = json.dumps({"summary": f"episode {planted} was late"})
        _, findings = scan(finder(), [("table alerts", text)])
        assert findings, planted
        assert all(planted.lower() not in f.value_hint.lower() for f in findings)  # the report never repeats it


def test_pseudonymous_keys_sectors_and_counts_are_not_findings() -> None:
    clean = json.dumps({
        "child_key": pseudonym(b"k", f"nhs_number:{NHS_NUMBER}"), "postcode_sector": "CV1 2", "offset": 123,
        "birth_month": "2011-04", "episode_ref": pseudonym(b"k", "episode_ref:MFH-2026-0001"),
        "premises_category": "home", "agency": "police",
    })
    read, findings = scan(finder(), [("topic safeguarding.events.v1[0]@0", clean)])
    assert (read, findings) == (1, [])


def test_free_text_that_reads_like_a_contract_word_is_not_a_finding() -> None:
    """An indicator "substance misuse" reads like the disclosure enum `substance_misuse` that facts carry."""
    doc = {**SENSITIVE, "payload": {"indicators": ["substance misuse", "seen in hotels"]}}
    finder = Finder(secret_values(doc))
    text = json.dumps({"disclosures": ["substance_misuse"], "note": "x"})
    assert scan(finder, [("topic safeguarding.children.v1[0]@1", text)])[1] == []
    assert scan(finder, [("log worker.log:1", "seen in hotels")])[1] != []


def test_the_contract_s_own_error_messages_name_no_postcode() -> None:
    """A dead letter's error text is stored; it once said "e.g. CV1 2GN", which the demo's scan found as a
    postcode of the city's own messages."""
    from streams.core.ingest import Origin, ingest
    from tests.unit.contract_builders import minimal, mutate

    bad = mutate(minimal("missing.started"), "location", {"postcode": "not a postcode"})
    letter = ingest(b"k", json.dumps(bad).encode(), Origin("inbound", 0, 0, datetime.now(UTC)))
    assert getattr(letter, "errors", None), letter
    finder = Finder(secret_values({"location": {"postcode": "CV1 2GN"}}))
    assert scan(finder, [("table deadletter", json.dumps(letter.errors))])[1] == []
