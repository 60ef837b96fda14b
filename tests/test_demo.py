"""``pixseek demo`` runs offline and suggests only queries its shipped model answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pixseek.cli.main import main
from pixseek.core.query import SearchOptions
from pixseek.demo.demo import DemoOptions, build_demo, shows
from pixseek.search import search


@pytest.mark.slow
def test_demo_suggests_queries_its_model_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    suggested = re.search(r"try: pixseek search '([^']+)' --collection (\S+)", out)
    assert suggested is not None, out
    query, root = suggested.groups()
    shown = re.findall(r'^search "([^"]+)":', out, re.MULTILINE)
    assert len(shown) == 3 and query not in shown
    demo = build_demo(DemoOptions(tmp_path / "demo"))  # reopened: its captions
    assert str(demo.collection.root) == root
    for text in [*shown, query]:
        hits = search(demo.collection, text, SearchOptions(k=4, kind="image"))
        right = [shows(demo.captions.get(h.record.path, ""), text) for h in hits]
        assert sum(right) >= 3, (text, right)
