import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from infer import FramingClassifier
from infer.render import highlight_html, html_page
from infer.trends import frame_shares, smoothed, wilson_interval
from train.cli import main

HOSTILE = 'The plant was completed. <script>alert("x")</script> Mothers wept & "grieved".'


class Checker(HTMLParser):
    """Well-formedness: every opened tag (bar void ones) is closed in order; records tags seen."""

    VOID = {"meta", "hr", "br", "img"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"


def check_html(markup: str) -> Checker:
    checker = Checker()
    checker.feed(markup)
    checker.close()
    assert checker.stack == [], f"unclosed tags {checker.stack}"
    return checker


@pytest.fixture(scope="module")
def clf(model_dir):
    return FramingClassifier.from_pretrained(model_dir, device="cpu")


def test_highlight_escapes_hostile_input(clf):
    result = clf.analyze(HOSTILE)
    markup = html_page([highlight_html(result, text=HOSTILE, labels=clf.labels)])
    checker = check_html(markup)
    assert "script" not in checker.tags
    assert "&lt;script&gt;" in markup and "<script>" not in markup
    assert "&amp;" in markup and "&quot;grieved&quot;" in markup


def test_predict_html_flag_writes_a_safe_page(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": HOSTILE}) + "\n" + json.dumps({"text": "They won."}) + "\n")
    page = tmp_path / "view.html"
    assert main(["predict", str(model_dir), "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
                 "--html", str(page)]) == 0
    markup = page.read_text()
    assert "script" not in check_html(markup).tags
    assert markup.count("<section>") == 2


def test_wilson_interval_known_value():
    lo, hi = wilson_interval(np.array([5]), np.array([10]))
    assert lo[0] == pytest.approx(0.2366, abs=1e-4) and hi[0] == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson_interval(np.array([0]), np.array([0]))
    assert (lo[0], hi[0]) == (0.0, 1.0)


def test_frame_shares_by_month():
    df = pd.DataFrame({"date": ["2012-01-03", "2012-01-20", "2012-02-01", "2012-02-02"],
                       "labels": [["loss"], [], ["loss", "triumph"], ["triumph"]]})
    shares = frame_shares(df, ["loss", "triumph"], by="month")
    assert shares["n"].tolist() == [2, 2]
    assert shares["loss_share"].tolist() == [0.5, 0.5]
    assert shares["triumph_count"].tolist() == [0, 2]
    assert (shares["loss_lo"] <= shares["loss_share"]).all() and (shares["loss_share"] <= shares["loss_hi"]).all()
    with pytest.raises(ValueError, match="by must be one of"):
        frame_shares(df, ["loss"], by="fortnight")


def test_smoothing_keeps_the_ends():
    assert smoothed([0, 3, 6], window=3).tolist() == [1.5, 3.0, 4.5]
