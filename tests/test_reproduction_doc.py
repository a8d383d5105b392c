"""docs/reproduction.md and the README's headline are rendered from the result files: the
committed text must be what the files give, and the templates must not type results by hand."""

import re
import shutil

import pandas as pd
import pytest
from helpers import analysis_script


@pytest.fixture(scope="module")
def renderer():
    return analysis_script("render_reproduction")


@pytest.fixture(scope="module")
def values(renderer):
    return renderer.values()


def _first_difference(committed: str, rendered: str) -> str:
    for number, (a, b) in enumerate(zip(committed.splitlines(), rendered.splitlines(),
                                        strict=False), 1):
        if a != b:
            return f"line {number}: committed {a!r}, the files give {b!r}"
    return "the lengths differ"


def test_committed_numbers_are_what_the_result_files_give(renderer, values):
    doc, readme = renderer.rendered(values)
    for path, text in ((renderer.DOC, doc), (renderer.README, readme)):
        committed = path.read_text()
        assert committed == text, (f"{path.name} differs from its rendering "
                                   f"({_first_difference(committed, text)}): "
                                   "run `make reproduction-doc`")


def test_templates_type_no_measured_number_by_hand(renderer):
    # a result is a decimal with a unit (21.3 %, +1.3 pp): in a template it must be a
    # placeholder; settings (eps 0.05, lr 1e-3) carry no unit and stay as text
    measured = re.compile(r"(?<![\w.])[+-]?\d+\.\d+\s?(?:%|pp\b)")
    for template in sorted(renderer.TEMPLATES.glob("*.md")):
        text = renderer.PLACEHOLDER.sub("X", template.read_text())
        assert not measured.findall(text), f"{template.name} types results by hand"


def test_a_changed_result_file_changes_the_document(renderer, values, monkeypatch, tmp_path):
    # the numbers are read from the files: edit one accuracy in a copy and the text follows
    copy = tmp_path / "reproduction"
    shutil.copytree(renderer.RESULTS, copy, ignore=shutil.ignore_patterns("*.png"))
    monkeypatch.setattr(renderer, "RESULTS", copy)
    monkeypatch.setattr(renderer, "PLAIN", copy / "plain-pass")
    before = values
    assert before["pooled.n"] == "8" and before["e6.apgd.t"] == "5.43"
    csv = copy / "fig5-n1000" / "k5" / "results.csv"
    rows = pd.read_csv(csv)
    cnnf_apgd = (rows["model"] == "models/fmnist-small-cnnf5") & (rows["attack"] == "apgd-ce")
    twin = rows.loc[(rows["model"] == "models/fmnist-small-cnn")
                    & (rows["attack"] == "apgd-ce"), "accuracy"].item()
    rows.loc[cnnf_apgd, "accuracy"] = twin + 0.5
    rows.to_csv(csv, index=False)
    after = renderer.values()
    assert after["e6.s0.apgd_gain"] == "+50.0" != before["e6.s0.apgd_gain"]
    assert after["e6.apgd.mean_sd"] != before["e6.apgd.mean_sd"]
    # the pooled eight take seed 0's retrained pair (matched epochs), not the shipped one
    assert after["pooled.mean_sd"] == before["pooled.mean_sd"]
    assert "Adam, 6 epochs, seed 0, retrained" in after["pooled.table"]
    with pytest.raises(SystemExit, match="no value"):
        renderer.render("{{no.such.value}}", after)
