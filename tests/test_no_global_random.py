"""No module in arraybragg draws from module-level random state (numpy.random.* or random.*)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "arraybragg"

NUMPY_GLOBAL = {
    "seed", "rand", "randn", "random", "random_sample", "ranf", "sample", "normal", "uniform",
    "poisson", "choice", "shuffle", "permutation", "randint", "random_integers",
    "standard_normal", "exponential", "gamma", "beta", "binomial", "multivariate_normal",
    "get_state", "set_state",
}
STDLIB_GLOBAL = {
    "random", "seed", "gauss", "uniform", "randint", "randrange", "choice", "choices", "shuffle",
    "sample", "normalvariate", "expovariate", "gammavariate", "betavariate", "triangular",
    "vonmisesvariate", "lognormvariate", "getrandbits", "setstate", "getstate",
}
FORBIDDEN = {f"numpy.random.{name}" for name in NUMPY_GLOBAL} | {f"random.{name}" for name in STDLIB_GLOBAL}
NEEDS_SEED = {"numpy.random.default_rng", "numpy.random.RandomState", "numpy.random.PCG64",
              "numpy.random.SeedSequence", "numpy.random.MT19937", "numpy.random.Philox", "numpy.random.SFC64"}


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted name it was imported as."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def _unseeded(call: ast.Call) -> bool:
    if call.keywords and any(k.arg == "seed" for k in call.keywords):
        seed = next(k.value for k in call.keywords if k.arg == "seed")
    elif call.args:
        seed = call.args[0]
    else:
        return True
    return isinstance(seed, ast.Constant) and seed.value is None


def global_random_calls(source: str) -> list[tuple[int, str]]:
    """(line, dotted name) of each call that uses module-level random state."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        if name in FORBIDDEN or (name in NEEDS_SEED and _unseeded(node)):
            found.append((node.lineno, name))
    return sorted(found)


def test_scanner_finds_every_kind_of_global_draw():
    source = "\n".join(
        [
            "import numpy as np",  # 1
            "import random",
            "import numpy.random as npr",
            "from numpy.random import default_rng, rand as r",
            "from numpy import random as nr",  # 5
            "np.random.seed(1)",
            "x = np.random.normal(size=3)",
            "random.gauss(0, 1)",
            "npr.poisson(4.0)",
            "r(3)",  # 10
            "nr.choice([1, 2])",
            "default_rng()",
            "np.random.default_rng(None)",
            "np.random.default_rng(seed=None)",
            "np.random.default_rng(1234)",  # 15
            "np.random.Generator(np.random.PCG64(5)).random(3)",
            "rng = np.random.default_rng(seed=7); rng.normal()",
            "np.random.RandomState()",
        ]
    )
    assert [line for line, _ in global_random_calls(source)] == [6, 7, 8, 9, 10, 11, 12, 13, 14, 18]


def test_package_modules_exist():
    assert len(list(PACKAGE.rglob("*.py"))) >= 4


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_level_random_state(path):
    assert global_random_calls(path.read_text(encoding="utf-8")) == []
