"""The sandbox stays apart from the product: no module of tmapi_spiders outside the sandbox
package imports it or names it for loading, at module level or inside a function; only
settings.py enables its add-on (ADDONS), as a project enables any add-on."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.crawl_helpers import REPO

PACKAGE = REPO / "tmapi_spiders"
SANDBOX = "tmapi_spiders.sandbox"


def sandbox_references(path: Path) -> list[str]:
    """Each import of the sandbox, and each string naming one of its modules, in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the file's own package
                parts = path.relative_to(REPO).with_suffix("").parts[: -node.level]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names = [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if name == SANDBOX or SANDBOX + "." in name]
    return found


def test_no_product_module_imports_the_sandbox() -> None:
    product = [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if PACKAGE / "sandbox" not in path.parents and path != PACKAGE / "settings.py"
    ]
    assert len(product) > 50
    offenders = {str(path.relative_to(REPO)): refs for path in product if (refs := sandbox_references(path))}
    assert offenders == {}


def test_the_walk_finds_what_it_looks_for() -> None:
    # settings.py names the add-on, and the sandbox's own modules import each other
    assert sandbox_references(PACKAGE / "settings.py")
    assert sandbox_references(PACKAGE / "sandbox" / "__main__.py")
