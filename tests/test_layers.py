"""The product's layers hold: a package imports only its own layer and the ones below it, and no two
modules of the product import each other (directly or round a longer circle).

Layers, lowest first (README "Code layout"): core (shared ground: video, keypoint names and body
size, gaps, signal helpers), sessions (session.yaml and config), calibration, biomech (OpenSim),
models (learned models, trained on biomech's model), pipeline (the stages, the runner, batches);
app, bench, demo and tests sit on top and may import anything.
"""
from __future__ import annotations

import ast
from pathlib import Path

from pipeline.code_digest import PROJECT_PACKAGES
from tests.conftest import ROOT

LAYERS = ["core", "sessions", "calibration", "biomech", "models", "pipeline"]


def imports_of(path: Path, module: str) -> set[str]:
    """Every product module ``path`` imports, at module level or inside functions (absolute and relative)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import module`
    return {m for m in found if m.split(".")[0] in LAYERS}


def product_modules() -> dict[str, Path]:
    out = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


def test_layers_are_the_ones_the_fingerprint_follows():
    assert set(PROJECT_PACKAGES) == set(LAYERS)


def test_no_module_imports_a_higher_layer():
    modules = product_modules()
    wrong = []
    for name, path in modules.items():
        own = LAYERS.index(name.split(".")[0])
        for imp in sorted(imports_of(path, name)):
            if LAYERS.index(imp.split(".")[0]) > own:
                wrong.append(f"{name} imports {imp}")
    assert not wrong, "a lower layer imports a higher one:\n" + "\n".join(wrong)


def test_the_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "intrinsics.py"
    bad.write_text("def f():\n    from pipeline.frames import run_frames\n    from . import camera\n")
    assert imports_of(bad, "calibration.intrinsics") == {"pipeline.frames", "pipeline.frames.run_frames",
                                                         "calibration", "calibration.camera"}


def find_circles(graph: dict[str, set[str]]) -> list[str]:
    """Each import circle of a module graph (name -> names it imports), as 'a -> b -> a'."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(" -> ".join((path + [node])[(path + [node]).index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    return circles


def test_the_circle_check_finds_circles():
    assert find_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a -> b -> c -> a"]
    assert find_circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_circles():
    modules = product_modules()
    graph = {name: {m for m in imports_of(path, name) if m in modules and m != name} for name, path in modules.items()}
    # importing a module runs its package's __init__ first: that is not a circle of its own
    graph = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in graph.items()}
    circles = find_circles(graph)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_product_is_installed_and_no_script_edits_sys_path():
    import subprocess
    import sys

    entry = Path(sys.executable).parent / "markerless"
    assert entry.is_file(), "make venv installs the package (pyproject.toml) with its command line"
    out = subprocess.run([str(entry), "stages"], capture_output=True, text=True, cwd="/", timeout=120)
    assert out.returncode == 0 and "keypoints" in out.stdout, out.stderr
    edits = [f"{p.relative_to(ROOT)}" for d in (*LAYERS, "bench", "demo", "tests", "tools") for p in (ROOT / d).rglob("*.py")
             if "sys.path." + "insert" in p.read_text() or "sys.path." + "append" in p.read_text()]
    edits += ["app.py"] if "sys.path." + "insert" in (ROOT / "app.py").read_text() else []
    assert not edits, f"scripts that edit sys.path instead of importing the installed package: {edits}"
