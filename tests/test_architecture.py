"""The package's shape: layers as folders, imports flowing one way, no circles."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pixseek"
# Lower layers never import higher ones; a layer may import its own modules.
LAYERS = {
    "core": 0,
    "imaging": 1,
    "models": 2,
    "stores": 2,
    "collection": 3,
    "ingest": 4,
    "search": 4,
    "training": 5,
    "jobs": 6,
    "demo": 7,
    "api": 8,
    "client": 8,
    "cli": 9,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, module_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pixseek"):
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("pixseek"))
    return names


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_only_init_and_main_at_the_package_root() -> None:
    loose = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py"}
    assert not loose
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= set(LAYERS) | {"web"}, folders - set(LAYERS)


def test_imports_flow_down_the_layers() -> None:
    found = modules()
    wrong = []
    for name, path in found.items():
        own = layer(name)
        for target in imports(path, module_level_only=False):
            theirs = layer(target)
            if own is not None and theirs is not None and theirs > own:
                wrong.append(f"{name} -> {target}")
    assert not wrong, wrong


def test_no_import_circles() -> None:
    found = modules()
    # importing a module imports its parent packages first: those edges are not circles
    graph = {
        name: {
            t
            for t in imports(path, module_level_only=True)
            if t in found and t != name and not name.startswith(t + ".")
        }
        for name, path in found.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in graph[node]:
            if state.get(target) == 1:
                start = trail.index(target) if target in trail else len(trail) - 1
                cycles.append([*trail[start:], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles
