"""The package's layers, as tests: no import cycle, imports only point down, and light modules never load torch.

Imports are read from the source with `ast`, module-level and in-function alike (an import inside a function is
still a dependency, only a later one); imports under `if TYPE_CHECKING:` are types only and never run. Registries
that name a module by string (`importlib.import_module`) are how a lower layer reaches a plug-in; they are not
imports. See docs/architecture.md.
"""

from __future__ import annotations

import ast
import fnmatch
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "skillgap"

FOUNDATION, DOMAIN, MODELS, SERVICES, RECIPES, ENTRY = range(6)
LAYER_NAMES = ["foundation", "domain", "models", "services", "recipes", "entry points"]

# Every module's layer (names under skillgap; "pkg.*" covers a package's modules). A module may import its own layer
# and the ones below, never one above.
LAYERS = {
    # stdlib-only leaves every stage shares
    "skillgap": FOUNDATION, "errors": FOUNDATION, "items": FOUNDATION, "skills": FOUNDATION,
    "answers": FOUNDATION, "io": FOUNDATION,
    # the loop's logic on items, grades and profiles; no model
    "grade": DOMAIN, "formats": DOMAIN, "suites": DOMAIN, "suites.*": DOMAIN, "data": DOMAIN, "profile": DOMAIN,
    "attribution": DOMAIN, "logs": DOMAIN,
    "verify": DOMAIN, "graph": DOMAIN, "store": DOMAIN, "report": DOMAIN,
    "target": DOMAIN, "target.uniform": DOMAIN, "target.stat_sel": DOMAIN, "target.curriculum": DOMAIN,
    "target.online": DOMAIN, "target.skill_it": DOMAIN,
    # model access: configs, sources, backends, the pool
    "models": MODELS, "models.*": MODELS,
    # what uses a model
    "teacher": SERVICES, "judge": SERVICES, "embed": SERVICES, "label": SERVICES, "discover": SERVICES,
    "diagnose": SERVICES, "scoring": SERVICES, "target.stat_syn": SERVICES, "target.skillmix": SERVICES,
    "target.active": SERVICES,
    "skillmix": SERVICES, "train": SERVICES, "localize": SERVICES, "library": SERVICES,
    "recipes": RECIPES, "recipes.*": RECIPES, "api": RECIPES,  # the Python verbs wrap the recipes
    "cli": ENTRY, "cli.*": ENTRY, "__main__": ENTRY,
}

# Known upward imports, each to be removed by its module's owner: (importer, imported) -> why it is still there.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}

# Modules that load torch when imported (everything else imports them lazily, inside the function that needs them).
# cli.weights: the localize, library and compose commands, whose configs live beside the grafting code (torch); the
# command table imports it only when one of those commands runs, so `skillgap --help` stays free of torch.
HEAVY = {"skillgap.localize", "skillgap.models.hf", "skillgap.recipes.localize", "skillgap.cli.weights"}
HEAVY_LIBRARIES = ("torch", "transformers", "peft", "vllm", "ray")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (getattr(test, "id", None) == "TYPE_CHECKING"
                                         or getattr(test, "attr", None) == "TYPE_CHECKING")


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The skillgap modules an import statement loads: `from skillgap import skillmix` is the submodule."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                 for a in node.names]
    return [n for n in names if n in MODULES]


def imports(path: Path) -> dict[str, int]:
    """Every skillgap module `path` imports, at module level or inside a function, with the first line that does."""
    found: dict[str, int] = {}
    todo: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while todo:
        for node in ast.iter_child_nodes(todo.pop()):
            if _type_checking(node):
                todo.extend(node.orelse)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in _imported(node):
                    found.setdefault(name, node.lineno)
            else:
                todo.append(node)
    found.pop(module_name(path), None)
    return found


def graph() -> dict[str, dict[str, int]]:
    return {m: imports(p) for m, p in MODULES.items()}


def find_cycle(edges: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, colouring modules on the current path)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(edges.get(m, {})):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def layer(module: str) -> int | None:
    name = module.removeprefix("skillgap").removeprefix(".") or "skillgap"
    if name in LAYERS:
        return LAYERS[name]
    return next((v for k, v in LAYERS.items() if fnmatch.fnmatchcase(name, k)), None)


def test_the_import_graph_has_no_cycle():
    edges = graph()
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(
        f"{a} (line {edges[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


def test_every_module_has_a_layer():
    unmapped = [m for m in MODULES if layer(m) is None]
    assert not unmapped, (f"{unmapped}: add each to LAYERS in tests/test_architecture.py and to the map in "
                          "docs/architecture.md (which layer: what does it import, and who imports it?)")


def test_imports_only_point_down():
    upward = [f"{m}:{line} imports {n} ({LAYER_NAMES[layer(n)]}) from the {LAYER_NAMES[layer(m)]} layer"
              for m, targets in graph().items() for n, line in targets.items()
              if layer(m) is not None and layer(n) is not None and layer(n) > layer(m)
              and (m.removeprefix("skillgap."), n.removeprefix("skillgap.")) not in KNOWN_EXCEPTIONS]
    assert not upward, ("imports that point up a layer (move the shared part down, or import the higher module from "
                        "above):\n" + "\n".join(upward))


def test_light_modules_do_not_load_torch():
    """One process imports every light module in turn: the first after which torch (or another heavy library) is
    loaded is the one that pulls it in."""
    light = [m for m in MODULES if m not in HEAVY and not m.endswith(".__main__")]  # running them runs the CLI
    script = f"""
import importlib, sys
for m in {light!r}:
    importlib.import_module(m)
    heavy = [x for x in {HEAVY_LIBRARIES!r} if x in sys.modules]
    if heavy:
        sys.exit(f"importing {{m}} loads {{', '.join(heavy)}}: import it inside the function that needs it")
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.stdout
