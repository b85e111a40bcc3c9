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
