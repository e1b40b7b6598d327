"""The import graph of every shipped module: no cycle anywhere, and every edge points down.

Imports are read with ``ast`` from the source, so a lazy import inside a function and one
under ``if TYPE_CHECKING:`` count like any other: a cycle hidden that way is still a cycle.
Run ``python -m tests.architecture.test_import_graph`` for the layer-to-layer summary.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "stakeledger"
FOLDERS = ("domain", "projections", "adapters", "cli", "api", "agents")

# Who may import whom, by layer (a layer is the longest prefix below that a module starts
# with). A module may always import its own layer. Anything not listed is forbidden.
LAYERS = {
    "stakeledger.domain.vocabulary": set(),
    "stakeledger.domain.errors": set(),
    "stakeledger.domain.rules": {"stakeledger.domain.vocabulary", "stakeledger.domain.errors"},
    "stakeledger.domain.model": {
        "stakeledger.domain.vocabulary",
        "stakeledger.domain.errors",
        "stakeledger.domain.rules",
    },
    "stakeledger.domain.decisions": {
        "stakeledger.domain.vocabulary",
        "stakeledger.domain.errors",
        "stakeledger.domain.rules",
        "stakeledger.domain.model",
    },
    "stakeledger.domain.service": {
        "stakeledger.domain.vocabulary",
        "stakeledger.domain.errors",
        "stakeledger.domain.rules",
        "stakeledger.domain.model",
        "stakeledger.domain.decisions",
    },
    "stakeledger.adapters.persistence": {"stakeledger.domain"},
    # The read side reads the log and the domain's vocabulary; it never writes events, so it
    # may not reach the decisions or the unit of work, nor the importer (which writes).
    "stakeledger.projections": {
        "stakeledger.domain.vocabulary",
        "stakeledger.domain.errors",
        "stakeledger.domain.rules",
        "stakeledger.domain.model",
        "stakeledger.domain.service.application",
        "stakeledger.domain.service.clock",
        "stakeledger.domain.service.log",
        "stakeledger.adapters.persistence",
    },
    "stakeledger.adapters.evm": {"stakeledger.domain", "stakeledger.adapters.persistence", "stakeledger.projections"},
    "stakeledger.agents": {"stakeledger.domain", "stakeledger.adapters", "stakeledger.projections"},
    "stakeledger.api": {"stakeledger.domain", "stakeledger.adapters", "stakeledger.projections"},
    "stakeledger.cli": {
        "stakeledger.domain",
        "stakeledger.adapters",
        "stakeledger.projections",
        "stakeledger.api",
        "stakeledger.agents",
    },
}


def module_files() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([PACKAGE, *parts])] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module of ours that ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from package import module` imports the module; `from module import name` the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith(PACKAGE + "."):
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    graph = {name: imports_of(name, path, known) for name, path in files.items()}
    # A package's __init__ only guards its import name; importing a module through it is no edge.
    return {name: {t for t in targets if files[t].name != "__init__.py"} for name, targets in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def layer_of(module: str) -> str:
    matches = [layer for layer in LAYERS if module == layer or module.startswith(layer + ".")]
    if not matches:
        raise AssertionError(f"{module} belongs to no layer: add its folder to LAYERS")
    return max(matches, key=len)


def allowed(source: str, target: str) -> bool:
    source_layer = layer_of(source)
    if layer_of(target) == source_layer:
        return True
    return any(target == layer or target.startswith(layer + ".") for layer in LAYERS[source_layer])


def forbidden_edges(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{source} -> {target}"
        for source, targets in sorted(graph.items())
        for target in sorted(targets)
        if not allowed(source, target)
    ]


def test_import_graph_when_walked_then_no_module_reaches_itself_again():
    graph = import_graph()
    assert len(graph) > 80
    assert cycles(graph) == []


def test_import_graph_when_walked_then_every_edge_points_down_the_layers():
    assert forbidden_edges(import_graph()) == []


def test_domain_when_walked_then_it_imports_no_projection_adapter_cli_or_api():
    graph = import_graph()
    outward = (
        "stakeledger.projections",
        "stakeledger.adapters",
        "stakeledger.cli",
        "stakeledger.api",
        "stakeledger.agents",
    )
    leaks = [
        f"{s} -> {t}"
        for s, ts in graph.items()
        if s.startswith("stakeledger.domain")
        for t in ts
        if t.startswith(outward)
    ]
    assert leaks == []


def test_checker_when_given_a_cycle_and_an_upward_edge_then_it_reports_both():
    graph = {
        "stakeledger.domain.rules.a": {"stakeledger.domain.model.b"},
        "stakeledger.domain.model.b": {"stakeledger.domain.rules.a"},
        "stakeledger.cli.c": set(),
    }
    assert cycles(graph) == [["stakeledger.domain.model.b", "stakeledger.domain.rules.a"]]
    assert forbidden_edges(graph) == ["stakeledger.domain.rules.a -> stakeledger.domain.model.b"]


def test_aggregate_events_when_searched_then_only_the_model_triggers_them():
    """An aggregate raises its own events: decisions call its methods, never trigger_event."""
    outside = [
        f"{name}:{node.lineno}"
        for name, path in module_files().items()
        if not name.startswith("stakeledger.domain.model")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "trigger_event"
    ]
    assert outside == []


def test_pyproject_when_read_then_every_folder_with_an_init_is_an_installed_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {name for name, path in module_files().items() if path.name == "__init__.py"}
    assert listed == on_disk
    assert config["package-dir"] == {f"{PACKAGE}.{folder}": folder for folder in FOLDERS}


def test_installed_names_when_imported_outside_the_checkout_then_only_stakeledger_exists(tmp_path: Path):
    """The folders install under one name: a user's own ``cli`` or ``domain`` never meets ours."""
    ours = "; ".join(f"import {PACKAGE}.{folder}" for folder in FOLDERS)
    bare = "; ".join(
        f"found = importlib.util.find_spec({folder!r}); assert found is None, found.origin" for folder in FOLDERS
    )
    for code in (ours, f"import importlib.util; {bare}"):
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def summary() -> str:
    graph = import_graph()
    between: dict[tuple[str, str], int] = defaultdict(int)
    for source, targets in graph.items():
        for target in targets:
            if layer_of(source) != layer_of(target):
                between[layer_of(source), layer_of(target)] += 1
    lines = [f"{len(graph)} modules, {sum(map(len, graph.values()))} imports between them"]
    lines += [f"cycles: {cycles(graph) or 'none'}", f"forbidden edges: {forbidden_edges(graph) or 'none'}"]
    lines += [
        f"  {s.removeprefix(PACKAGE + '.')} -> {t.removeprefix(PACKAGE + '.')}: {n}"
        for (s, t), n in sorted(between.items())
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary())
