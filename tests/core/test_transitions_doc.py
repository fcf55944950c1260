"""docs/transitions.md is rendered from core/transitions.py and must match it."""

from __future__ import annotations

from pathlib import Path

from swarmfold.shell import docs_transitions

DOC = Path(__file__).resolve().parents[2] / "docs" / "transitions.md"


def test_transitions_doc_is_up_to_date() -> None:
    expected = docs_transitions.render()
    actual = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert actual == expected, (
        "docs/transitions.md is out of date with core/transitions.py; regenerate it with "
        "`python -m swarmfold.shell.docs_transitions`"
    )


def test_every_phase_and_trigger_is_drawn() -> None:
    from swarmfold.core.transitions import PHASES

    text = docs_transitions.render()
    for (source, trigger), target in PHASES.items():
        assert f"{source} --> {target}: {trigger}" in text


def test_the_writer_writes_the_rendered_text(tmp_path: Path) -> None:
    out = tmp_path / "transitions.md"
    assert docs_transitions.main([str(out)]) == 0
    assert out.read_text(encoding="utf-8") == docs_transitions.render()
