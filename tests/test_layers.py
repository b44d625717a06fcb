"""The import layers of lib/shaprl (README *Layout*): nothing imports upwards (issue 19).

Reads every module's imports (AST, including imports inside functions) and fails on any
import of a package in the same or a higher layer, except exactly the deprecated lazy
``shaprl.sverl.explain_agent`` shim in ``sverl/__init__.py``.
"""

import ast
import subprocess
import sys
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib" / "shaprl"

#: Bottom layer first. A package may import its own modules and any lower layer only.
LAYERS: list[set[str]] = [
    {"_version", "kernel_baseline"},
    {"repro", "plots", "batched", "shapley", "mdp", "simulators"},
    {"sverl", "agents", "domains"},
    {"fastsverl", "action_shapley"},
    {"explain"},
]
ALLOWED = {("sverl/__init__.py", "explain")}  # the deprecated shim (PEP 562, lazy)


def _layer(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"package {package!r} has no layer: add it to LAYERS and the README")


def _targets(path: Path) -> list[tuple[str, int]]:
    """First components of the shaprl packages ``path`` imports, with line numbers."""
    rel = path.relative_to(LIB)
    here = list(rel.parent.parts)
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:  # "from . import x" at the package root
                    parts = [node.names[0].name]
            elif node.module and node.module.split(".")[0] == "shaprl":
                parts = node.module.split(".")[1:] or [node.names[0].name]
            else:
                continue
            out.append((parts[0].removesuffix(".py"), node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names = alias.name.split(".")
                if names[0] == "shaprl" and len(names) > 1:
                    out.append((names[1], node.lineno))
    return out


def test_every_package_has_a_layer():
    packages = {p.name.removesuffix(".py") for p in LIB.iterdir() if p.name != "__init__.py"}
    packages = {p for p in packages if not p.startswith("__")}
    for package in packages:
        _layer(package)


def test_no_upward_import():
    upward = []
    for path in sorted(LIB.rglob("*.py")):
        rel = path.relative_to(LIB)
        if rel.parts == ("__init__.py",):
            continue  # the package root is the top: it may name anything (lazily)
        own = rel.parts[0].removesuffix(".py")
        for target, line in _targets(path):
            if target == own or (str(rel), target) in ALLOWED:
                continue
            if _layer(target) >= _layer(own):
                upward.append(f"{rel}:{line} imports shaprl.{target}")
    assert not upward, "imports that do not point downwards:\n" + "\n".join(upward)


def test_front_door_is_lazy_and_the_old_path_warns_once():
    code = (
        "import sys, warnings\n"
        "import shaprl\n"
        "assert 'shaprl.explain' not in sys.modules and 'torch' not in sys.modules\n"
        "from shaprl import explain_agent\n"
        "import shaprl.sverl as s\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    old = s.explain_agent\n"
        "dep = [x for x in w if issubclass(x.category, DeprecationWarning)]\n"
        "assert old is explain_agent and len(dep) == 1, dep\n"
        "assert 'shaprl.explain_agent' in str(dep[0].message)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
