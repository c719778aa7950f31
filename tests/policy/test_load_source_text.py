"""``LoadedDocument.source_text`` finds a scalar's written text where the converted data has
the value: through anchors, ``<<`` merges (a key written in the mapping first, then the first
merge that has it) and a mapping that merges itself."""

from __future__ import annotations

import pytest

from policyroute.policy.load import load_yaml

TEXT = """\
base: &base {a: 0x10, b: TRUE}
more: &more {b: false, c: 1.50}
merged: {<<: [*base, *more], a: 007}
listed: [*base, 1e3]
loop: &loop {<<: *loop, d: .5}
"""


@pytest.mark.parametrize(
    ("path", "written"),
    [
        (("base", "a"), "0x10"),
        (("merged", "a"), "007"),
        (("merged", "b"), "TRUE"),
        (("merged", "c"), "1.50"),
        (("listed", 0, "b"), "TRUE"),
        (("listed", 1), "1e3"),
        (("loop", "d"), ".5"),
        (("loop", "e"), None),
        (("merged",), None),
        (("listed", 2), None),
        (("listed", "a"), None),
        (("base", 0), None),
        (("base", "a", "x"), None),
    ],
)
def test_the_written_text_of_a_scalar(path: tuple[str | int, ...], written: str | None) -> None:
    doc = load_yaml(TEXT)

    assert doc.source_text(path) == written


def test_a_document_that_could_not_be_read_has_no_text() -> None:
    assert load_yaml("a: [1,\n").source_text(("a", 0)) is None
