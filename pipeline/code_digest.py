"""What code a stage runs: a digest of its modules' source and of the libraries it calls.

A stage's fingerprint includes this digest instead of a hand-kept version number, so an upgrade of
the project (or of OpenSim, MediaPipe, torch, ...) re-runs exactly the stages whose code changed and
keeps the others. The modules are found by following ``import`` statements (module level and inside
functions) from the stage function's module through the project's own packages; the runner's own
bookkeeping modules are left out, because they decide *whether* a stage runs, not what it computes.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import lru_cache
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("core", "sessions", "calibration", "biomech", "models", "pipeline")
# Orchestration only: changing these never changes a stage's outputs.
BOOKKEEPING = frozenset({
    "pipeline.runner", "pipeline.stages", "pipeline.orchestrate", "pipeline.summary", "pipeline.logs",
    "pipeline.fingerprint", "pipeline.code_digest", "pipeline.verdict", "pipeline.lock",
})


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imports(path: Path, module: str) -> frozenset[str]:
    """Project modules that ``path`` imports anywhere in its body."""
    st = path.stat()
    return _parsed_imports(str(path), module, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=None)
def _parsed_imports(path_str: str, module: str, mtime_ns: int, size: int) -> frozenset[str]:
    """``_imports`` parsed once per file version: every stage's closure walks the same shared modules,
    and parsing them again for each stage took ~2 s of a 10 s trial's run (the file's modification
    time and size are in the key, so an edited file is parsed again)."""
    path = Path(path_str)
    tree = ast.parse(path.read_text(), filename=path_str)
    package = module.rsplit(".", 1)[0] if "." in module else module
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return frozenset(m for m in found if m.split(".")[0] in PROJECT_PACKAGES)


@lru_cache(maxsize=None)
def module_closure(module: str) -> tuple[str, ...]:
    """``module`` and every project module it reaches through imports, bookkeeping excluded, sorted."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or (name in BOOKKEEPING and name != module):
            continue
        path = _module_file(name)
        if path is None:
            continue  # a name imported from a module (`from pkg.mod import func`), not a module itself
        seen.add(name)
        todo.extend(_imports(path, name) - seen)
    return tuple(sorted(seen))


def source_digest(modules: tuple[str, ...]) -> str:
    """sha256 over the source files of ``modules`` (names and contents)."""
    h = hashlib.sha256()
    for name in modules:
        path = _module_file(name)
        h.update(name.encode())
        h.update(path.read_bytes() if path else b"")
    return h.hexdigest()


def library_versions(distributions: tuple[str, ...]) -> dict[str, str]:
    """Installed version of each distribution ('absent' when it is not installed)."""
    out = {}
    for dist in distributions:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def code_identity(module: str, libraries: tuple[str, ...] = ()) -> dict[str, object]:
    """The part of a fingerprint that says which code ran: module closure digest and library versions."""
    modules = module_closure(module)
    return {"modules": len(modules), "source": source_digest(modules), "libraries": library_versions(libraries)}
