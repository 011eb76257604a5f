"""The four floors (ARCHITECTURE.md): each package imports only the floors below it.

sim (1) < hw (2) < sw (3) < serveros (4). Software talks to devices only through sim's bus and
the register maps, so sw may import ``hw.<device>.registers`` but no gateware or model.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOOR = {"sim": 1, "hw": 2, "sw": 3, "serveros": 4}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    pkg = path.relative_to(ROOT).parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:                        # relative: resolve against the package
                base = list(pkg[:len(pkg) - node.level + 1])
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield node.lineno, mod


def _sources():
    for top in FLOOR:
        yield from sorted((ROOT / top).rglob("*.py"))


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_upward_imports(path):
    own = FLOOR[path.relative_to(ROOT).parts[0]]
    bad = []
    for line, mod in _imports(path):
        top = mod.split(".")[0]
        if top in FLOOR and FLOOR[top] > own:
            bad.append(f"line {line}: imports {mod} (floor {FLOOR[top]}) from floor {own}")
        if own == 3 and top == "hw" and not mod.endswith(".registers") and mod != "hw":
            bad.append(f"line {line}: software imports {mod}; only hw.<device>.registers is allowed")
    assert not bad, f"{path.relative_to(ROOT)}: " + "; ".join(bad)
