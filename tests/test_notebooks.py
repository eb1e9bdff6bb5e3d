"""Both notebooks run top to bottom on the tiny model; committed copies carry no outputs."""
import json
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from run_notebook import run_notebook  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_two_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_analyze_an_article.ipynb", "02_frame_trends.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stripped_in_git(path):
    nb = json.loads(path.read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb["cells"] if c["cell_type"] == "code")


def test_article_notebook_runs(model_dir):
    nb = run_notebook(NOTEBOOKS[0], {"model_dir": str(model_dir)})
    html = [o for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert html and 'class="smf-article"' in html[0]["data"]["text/html"]
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_trends_notebook_runs(model_dir):
    nb = run_notebook(NOTEBOOKS[1], {"model_dir": str(model_dir), "n_sentences": 400})
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
