"""The import graph of the source tree, read from the code (``ast``) without importing it.

Used by the layering rules (``tests/unit/test_layers.py``) and the wheel check: both must see
every import, including the ones deferred into a function body to keep a cold start cheap.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass(frozen=True)
class Import:
    """One import statement: who imports what, and whether it runs when the module loads."""

    importer: str
    imported: str
    line: int
    deferred: bool  # in a function body or under TYPE_CHECKING: not run when the module loads
    typing_only: bool = False  # under TYPE_CHECKING: never run at all


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package: str, root: Path = SRC) -> dict[str, Path]:
    """Every module of ``package`` (``okta_bridge``, ``okta_bridge_dev``) by dotted name."""
    base = root.joinpath(*package.split("."))
    return {module_name(path, root): path for path in sorted(base.rglob("*.py"))}


def imports_of(name: str, path: Path) -> list[Import]:
    """The absolute names ``name`` imports; ``from pkg import mod`` counts as ``pkg.mod`` when
    ``pkg.mod`` is a module, so that importing a sibling through its package is not missed."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, deferred: bool, typing: bool) -> None:
        for child in ast.iter_child_nodes(node):
            guarded = isinstance(child, ast.If) and _type_checking(child.test)
            inner = deferred or guarded or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend(
                    Import(name, a.name, child.lineno, deferred, typing) for a in child.names
                )
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in child.names:
                    candidate = f"{base}.{alias.name}"
                    target = candidate if _is_module(candidate) else base
                    found.append(Import(name, target, child.lineno, deferred, typing))
            visit(child, inner, typing or guarded)

    visit(tree, False, False)
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_module(dotted: str) -> bool:
    base = SRC.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def graph(package: str) -> list[Import]:
    """Every import made by the modules of ``package``."""
    return [found for name, path in modules(package).items() for found in imports_of(name, path)]
