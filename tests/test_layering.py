"""The package's layering (docs/README.md, "Code map"), checked from its imports.

Every module has a tier; a module may import from lower tiers, and from a
module of its own tier only where ``SIBLINGS`` says so.  No private name
(leading underscore, not a dunder) is imported from another module, nor is a
private attribute of an imported name used (``Jet._wrap``): what two modules
share is public in the lower one.  Modules whose names start with an
underscore (``_config``, ``_io``) are package-internal but their names are
public within the package.  A new module must be given a tier here.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "taylorsketch"

TIERS = {
    # 0: foundations, no jets: settings, files, argument checks, progress bars, documents, deletion sets,
    # where jobs run, memory-mapped shards
    "_config": 0, "_io": 0, "_check": 0, "progress": 0, "data": 0, "deletion": 0,
    "parallel": 0, "shards": 0,
    # 1: numba kernels on plain coefficient arrays
    "kernels": 1, "subset_kernels": 1,
    # 2: jets and their rules
    "rules": 2, "shape_rules": 2, "jet": 2, "multijet_rules": 2, "multijet": 2,
    # 3: functions on arrays and jets, and the user API of Taylor-mode AD
    "functions": 3, "api": 3, "plan": 3,
    # 4: layers, models, optimiser, training
    "nn": 4, "models": 4, "optim": 4, "training": 4,
    # 5: measurements, the sketch and its estimators, validation
    "measure": 5, "estimator": 5, "documents": 5, "sketch_file": 5, "sketch": 5, "folder": 5, "precomputation": 5, "validation": 5,
    "interaction": 5,
    # 6: the paper's set-up, the reproduction and its report, the command line
    "paper": 6, "presets": 6, "report": 6, "reproduce": 6, "commands": 6, "cli": 6,
    # the package's front door imports every tier
    "__init__": 7,
}

# (importer, imported) pairs allowed within one tier
SIBLINGS = {
    ("shape_rules", "rules"), ("jet", "rules"), ("jet", "shape_rules"),
    ("multijet_rules", "rules"), ("multijet_rules", "shape_rules"), ("multijet", "jet"), ("multijet", "multijet_rules"),
    ("functions", "plan"), ("models", "nn"), ("training", "optim"),
    ("documents", "estimator"), ("documents", "measure"),
    ("sketch", "estimator"), ("sketch", "measure"), ("sketch", "documents"), ("sketch", "sketch_file"),
    ("precomputation", "estimator"), ("precomputation", "sketch"), ("precomputation", "sketch_file"),
    ("precomputation", "folder"), ("sketch", "folder"), ("folder", "sketch"), ("folder", "sketch_file"),
    ("validation", "measure"), ("interaction", "measure"),
    ("report", "presets"), ("reproduce", "presets"), ("reproduce", "report"),
    ("reproduce", "paper"), ("commands", "paper"), ("commands", "reproduce"), ("cli", "commands"), ("cli", "reproduce"),
}


def _is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def imports(module, source, modules):
    """``(imported module, imported name or None, line)`` for every package import in ``source``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and not (node.module or "").startswith("taylorsketch"):
                continue
            if node.level > 1:
                raise AssertionError(f"{module}: relative import beyond the package, line {node.lineno}")
            path = (node.module or "").removeprefix("taylorsketch").lstrip(".")
            if path:
                target = path.split(".")[0]
                out.extend((target, alias.name, node.lineno) for alias in node.names)
            else:                       # from . import x: a submodule, or a name of __init__
                for alias in node.names:
                    if alias.name in modules:
                        out.append((alias.name, None, node.lineno))
                    else:
                        out.append(("__init__", alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "taylorsketch":
                    out.append((parts[1] if len(parts) > 1 else "__init__", None, node.lineno))
    return out


def violations(sources, tiers=TIERS, siblings=SIBLINGS):
    """Every breach of the layering in ``sources`` (module name -> source text)."""
    found = []
    for module, source in sorted(sources.items()):
        if module not in tiers:
            found.append(f"{module}: not in the tier table of tests/test_layering.py")
            continue
        for target, name, line in imports(module, source, set(sources) | set(tiers)):
            if target == module:
                continue
            if target == "__init__":
                if module != "__init__" and not (name.startswith("__") and name.endswith("__")):
                    found.append(f"{module}:{line} imports {name!r} from the package's __init__")
                continue
            if target not in tiers:
                found.append(f"{module}:{line} imports unknown module {target!r}")
                continue
            if tiers[target] > tiers[module]:
                found.append(f"{module}:{line} (tier {tiers[module]}) imports {target} "
                             f"(tier {tiers[target]}): upwards")
            elif tiers[target] == tiers[module] and (module, target) not in siblings:
                found.append(f"{module}:{line} imports its sibling {target} (tier {tiers[module]}); "
                             f"not listed in SIBLINGS")
            if name is not None and _is_private(name):
                found.append(f"{module}:{line} imports the private name {name!r} from {target}")
        found += private_attributes(module, source)
    return found


def private_attributes(module, source):
    """Uses of a private attribute of a name imported from the package (``Jet._wrap``)."""
    tree = ast.parse(source)
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and (node.level > 0 or (node.module or "").startswith("taylorsketch"))
                for alias in node.names}
    return [f"{module}:{node.lineno} uses the private attribute {node.value.id}.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in imported and _is_private(node.attr)]


def package_sources():
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(PACKAGE.glob("*.py"))}


def test_the_package_imports_only_downwards_and_no_private_names():
    assert violations(package_sources()) == []


def test_the_tier_table_names_only_existing_modules():
    assert set(TIERS) == set(package_sources())


def test_every_allowed_sibling_import_is_used():
    """``SIBLINGS`` lists what the package does, no more: a stale entry would hide a new import."""
    sources = package_sources()
    used = {(module, target) for module, source in sources.items()
            for target, _, _ in imports(module, source, set(sources))
            if target in TIERS and target != module and TIERS[target] == TIERS.get(module)}
    assert SIBLINGS - used == set()


def test_the_check_catches_synthetic_violations():
    """The checker must be able to fail: one breach of each kind."""
    sources = {
        "kernels": "from .models import MicroGPT\n",                 # upwards
        "jet": "def f():\n    from .functions import exp\n",          # upwards, lazily
        "functions": "from .jet import Jet, _as_array\n",            # private name
        "nn": "from . import models\n",                              # unlisted sibling
        "models": "from . import __version__, helper\n",              # a non-dunder from __init__
        "newmodule": "import numpy\n",                               # no tier
        "optim": "from .jet import Jet\nJet._wrap(1, 2)\n",             # private attribute
        "rules": "import numpy as np\nfrom . import kernels\n",      # fine
    }
    found = violations(sources)
    assert len(found) == 7, found
    for needle in ("kernels:1 (tier 1) imports models", "jet:2 (tier 2) imports functions",
                   "private name '_as_array'", "nn:1 imports its sibling models",
                   "'helper' from the package's __init__", "newmodule: not in the tier table",
                   "optim:2 uses the private attribute Jet._wrap"):
        assert any(needle in v for v in found), (needle, found)


def test_tests_use_public_names_of_the_package():
    """Tests import the package's public names; a private one is an internal they pin down."""
    found = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("taylorsketch"):
                found += [f"{path.name}:{node.lineno} {alias.name}" for alias in node.names
                          if _is_private(alias.name)]
    assert found == []
