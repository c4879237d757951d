"""The allowed import directions between the project's packages, checked on the source.

Every module of ``gateway``, ``simulators``, ``firmware_bridge`` and ``modelzoo`` belongs
to one component of :data:`LAYERS` (listed bottom to top; the longest matching prefix
wins). A module may import modules of its own component and of components below it,
never above, and no modules import each other in a cycle. Every import counts: module
level, inside functions (lazy imports) and under ``TYPE_CHECKING``.

Plugin registries name implementations by ``"module:Class"`` strings, loaded when a
type is chosen (camera source readers, sensor decoders, benchmarks). Such a string may
point up (the config's source types name their readers): it is not an import, but it
must name a class that exists. ``docs/architecture.md`` draws the same layers.
"""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("firmware_bridge", "gateway", "simulators", "modelzoo")

# Bottom to top. A component is a list of module prefixes.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("firmware_bridge", ("firmware_bridge",)),
    (
        "leaves",  # small shared mechanisms: they import nothing of the gateway's parts
        (
            "gateway",  # the package itself: __version__
            "gateway.errors",
            "gateway.health",
            "gateway.actuation",
            "gateway.jsontypes",
            "gateway.atomicfile",
            "gateway.backoff",
            "gateway.ratelog",
            "gateway.redaction",
            "gateway.interrupt",
            "gateway.net",
            "gateway.output",
            "gateway.native_stderr",
            "gateway.logs",
            "gateway.progress",
        ),
    ),
    (
        "records",  # the records that cross a package boundary (events map them)
        ("gateway.vision.analytics.types", "gateway.sensors.types"),
    ),
    ("sensor protocols", ("gateway.sensors",)),  # decoders, their registry and records
    ("config", ("gateway.config",)),
    ("sources", ("gateway.sources",)),
    ("modelstore", ("gateway.modelstore",)),
    ("vision", ("gateway.vision",)),
    ("serial ports", ("gateway.serialports",)),  # readers and the Modbus poller
    ("events", ("gateway.events",)),
    ("budget", ("gateway.budget",)),  # the byte budget's gate, on events
    ("simulators", ("simulators",)),  # fakes of the devices, on the gateway's own records
    ("modelzoo", ("modelzoo",)),  # the demo detector's training, on the simulator
    ("transport", ("gateway.transport",)),
    ("ingest", ("gateway.ingest",)),
    ("ngsi", ("gateway.ngsi",)),
    ("rules", ("gateway.rules",)),
    ("security", ("gateway.security",)),
    ("doctor", ("gateway.doctor",)),
    ("runtime", ("gateway.runtime",)),
    ("console", ("gateway.console",)),
    ("app", ("gateway.app",)),
    ("demo", ("gateway.demo",)),
    ("bench", ("gateway.bench",)),
    ("commands", ("gateway.commands",)),
    ("cli", ("gateway.cli", "gateway.__main__")),
]

LEAVES = next(rank for rank, (name, _prefixes) in enumerate(LAYERS) if name == "leaves")
_TARGET = re.compile(r"^((?:firmware_bridge|gateway|simulators|modelzoo)(?:\.\w+)+):(\w+)$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "build" not in path.parts:
                found[module_name(path)] = path
    return found


MODULES = source_modules()


def resolve(name: str) -> str | None:
    """The module an import of ``name`` loads (``pkg.mod.Name`` -> ``pkg.mod``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


@functools.cache
def parsed(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"))


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import statement of ``module``."""
    tree = parsed(module)
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for name in names:
            target = resolve(name)
            if target is not None and target != module:
                yield target, node.lineno


def registry_targets(module: str) -> Iterator[tuple[str, str, int]]:
    """``(module, class, line)`` of every ``"module:Class"`` string in ``module``."""
    tree = parsed(module)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _TARGET.match(node.value)
            if match:
                yield match.group(1), match.group(2), node.lineno


def component(module: str) -> tuple[int, str]:
    """``(rank, name)`` of the component ``module`` belongs to (longest prefix wins).

    A top-level module of ``gateway/`` that is not listed counts as a leaf: it may then
    import only leaves, which the direction test checks.
    """
    best: tuple[int, int, str] | None = None  # (prefix length, rank, name)
    for rank, (name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (module.startswith(prefix + ".") and prefix != "gateway")
            if covers and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank, name)
    if best is None and module.count(".") == 1 and MODULES[module].name != "__init__.py":
        return LEAVES, "leaves"
    if best is None:
        raise AssertionError(f"{module} belongs to no component of LAYERS: place it")
    return best[1], best[2]


def test_every_module_belongs_to_a_component() -> None:
    for module in MODULES:
        component(module)


# Between the top-level packages: who may import whom (and, for gateway -> simulators,
# only from which of gateway's components).
TOP_LEVEL: dict[str, set[str]] = {
    "firmware_bridge": set(),
    "simulators": {"firmware_bridge", "gateway"},
    "modelzoo": {"gateway", "simulators"},
    "gateway": {"firmware_bridge", "simulators"},
}
GATEWAY_USES_SIMULATORS_FROM = ("gateway.demo", "gateway.bench")


def test_top_level_packages() -> None:
    wrong = []
    for module in MODULES:
        top = module.split(".")[0]
        for target, line in imports_of(module):
            other = target.split(".")[0]
            if other == top:
                continue
            allowed = other in TOP_LEVEL[top]
            if top == "gateway" and other == "simulators":
                allowed = module.startswith(GATEWAY_USES_SIMULATORS_FROM)
            if not allowed:
                wrong.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {module} -> {target}")
    assert not wrong, "imports across top-level packages that are not allowed:\n" + "\n".join(wrong)


def test_imports_only_point_down() -> None:
    upward = []
    for module in MODULES:
        rank, name = component(module)
        for target, line in imports_of(module):
            target_rank, target_name = component(target)
            if target_rank > rank:
                where = f"{MODULES[module].relative_to(ROOT)}:{line}"
                upward.append(f"{where}: {name} -> {target_name} ({module} imports {target})")
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target, _line in imports_of(module):
            graph[module].add(target)
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def package_of(module: str) -> str:
    """The package a module is drawn in: ``gateway.<sub>`` (or a top-level module), else the top."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "gateway" else parts[0]


def test_no_import_cycle_between_packages() -> None:
    """Drawn package by package, the arrows form no circle: no package is split across layers."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target, _line in imports_of(module):
            if package_of(module) != package_of(target):
                graph[package_of(module)].add(package_of(target))
    cycles = strongly_connected(graph)
    assert not cycles, "package cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for start in sorted(set(graph) | {t for ts in graph.values() for t in ts}):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.add(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(members)
    return found


def test_registry_strings_name_classes_that_exist() -> None:
    stale = []
    for module in MODULES:
        for target, cls, line in registry_targets(module):
            tree = (
                ast.parse(MODULES[target].read_text(encoding="utf-8"))
                if target in MODULES
                else None
            )
            defined = tree is not None and any(
                isinstance(node, ast.ClassDef | ast.FunctionDef | ast.Assign)
                and cls in _defined_names(node)
                for node in tree.body
            )
            if not defined:
                stale.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {target}:{cls}")
    assert not stale, "registry strings naming nothing:\n" + "\n".join(stale)


def _defined_names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.ClassDef | ast.FunctionDef):
        return {node.name}
    assert isinstance(node, ast.Assign)
    return {t.id for t in node.targets if isinstance(t, ast.Name)}


@pytest.mark.parametrize(
    ("graph", "cycles"),
    [
        ({"a": {"b"}, "b": {"c"}}, []),
        ({"a": {"b"}, "b": {"a"}}, [{"a", "b"}]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [{"a", "b", "c"}]),
    ],
)
def test_cycle_finder(graph: dict[str, set[str]], cycles: list[set[str]]) -> None:
    assert strongly_connected(graph) == cycles


def test_the_checker_sees_lazy_type_checking_and_registry_imports() -> None:
    """The kinds of edge that hide: a lazy import, a TYPE_CHECKING import, a registry string."""
    assert "gateway.modelstore.store" in dict(imports_of("gateway.vision.detector.onnx"))
    assert "gateway.vision.protocols" in dict(imports_of("gateway.commands.detect"))
    assert ("simulators.camera.source", "SimulatorReader") in {
        (target, cls) for target, cls, _line in registry_targets("gateway.config.sources")
    }
    assert component("gateway.sensors.rsb")[1] == "sensor protocols"
    assert component("gateway.serialports.reader")[1] == "serial ports"
    assert component("gateway")[1] == "leaves"
