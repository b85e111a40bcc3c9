"""Imports go one way: app -> passport and app -> notifications, never back; libraries stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FORBIDDEN = {
    "passport": {"app", "flask", "flask_smorest", "mongoengine", "notifications"},
    "notifications": {"app", "flask", "flask_smorest", "mongoengine", "passport"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_library_packages_do_not_import_the_app(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if imported_modules(path) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_importing_the_app_has_no_side_effects(tmp_path):
    """No files, no threads, no connections: only ``create_app`` does things."""
    import subprocess
    import sys

    code = (
        "import threading, os, app, app.models, app.resources, app.services.staff, app.cli;"
        "print(threading.active_count(), sorted(os.listdir('.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 []"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


APP_MODULES = {_module_name(path): path for path in (ROOT / "app").rglob("*.py")}


def _resolve(module: str, name: str | None = None) -> str | None:
    """The app module that ``from module import name`` (or ``import module``) loads, if any."""
    if name and f"{module}.{name}" in APP_MODULES:
        return f"{module}.{name}"  # a submodule
    while module and module not in APP_MODULES:
        module = module.rpartition(".")[0]
    return module or None


def _absolute(node: ast.ImportFrom, importer: str) -> str:
    if not node.level:
        return node.module or ""
    package = importer if APP_MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def app_imports(importer: str, module_level_only: bool) -> set[str]:
    """The app modules ``importer`` imports (at module level only, or anywhere in it).

    ``from app.x import y`` counts as importing ``app.x.y`` when that is a module, else ``app.x``;
    an import under ``if TYPE_CHECKING:`` counts too (it is a dependency all the same).
    """
    tree = ast.parse(APP_MODULES[importer].read_text())
    nodes: list[ast.AST] = []
    if module_level_only:
        pending: list[ast.AST] = list(tree.body)
        while pending:  # module level, including under if/try at module level, never inside a function or class
            node = pending.pop()
            nodes.append(node)
            if isinstance(node, ast.If | ast.Try):
                pending.extend(ast.iter_child_nodes(node))
    else:
        nodes = list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(filter(None, (_resolve(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, importer)
            if module.split(".")[0] == "app":
                found.update(filter(None, (_resolve(module, alias.name) for alias in node.names)))
    found.discard(importer)
    return found


def external_imports(importer: str) -> set[str]:
    """Every module ``importer`` names in any import statement, anywhere in it (dotted, absolute)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(APP_MODULES[importer].read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, importer)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_import_graph_of_app_has_no_cycle():
    """Module-level imports only: an import inside a function runs later and cannot loop at import time."""
    graph = {module: app_imports(module, module_level_only=True) for module in APP_MODULES}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported):], imported])
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


SERVICES_MAY_NOT_IMPORT = ("flask", "flask_smorest", "app.runtime", "app.web")


def test_services_do_not_import_the_web_layer():
    """Services get collaborators as arguments: no Flask, no ``runtime()``, no web plumbing (anywhere in the file)."""
    offenders = {}
    for module in APP_MODULES:
        if not module.startswith("app.services."):
            continue
        bad = sorted(name for name in external_imports(module)
                     if any(name == forbidden or name.startswith(forbidden + ".")
                            for forbidden in SERVICES_MAY_NOT_IMPORT))
        if bad:
            offenders[module] = bad
    assert offenders == {}
