"""The runtime stands alone: nothing in infer/ imports train/."""
import ast
from pathlib import Path

INFER = Path(__file__).resolve().parents[1] / "infer"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_infer_never_imports_train():
    offenders = [p.name for p in INFER.glob("*.py") if "train" in imported_modules(p)]
    assert offenders == []
    assert len(list(INFER.glob("*.py"))) >= 5  # the check really looked at the package
