"""Run a notebook top to bottom with parameters, papermill-style, from the repo root.

Usage: python scripts/run_notebook.py NOTEBOOK [key=value ...]  (values are Python literals)
The executed copy is not saved: notebooks stay output-free in git.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(path: str | Path, params: dict, timeout: int = 1200) -> nbformat.NotebookNode:
    """Insert a cell with ``params`` after the cell tagged "parameters", then execute all cells."""
    nb = nbformat.read(str(path), as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items())))
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def main(argv: list[str]) -> int:
    params = {}
    for item in argv[1:]:
        key, _, value = item.partition("=")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    run_notebook(argv[0], params)
    print(f"ran {argv[0]} with {params}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
