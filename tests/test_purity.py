"""``swarmfold.core`` imports nothing that reads the clock, randomness, the network, files or logs.

Two independent checks: a static one (every import statement in every core module, parsed
with ``ast``, against an allow-list) and a dynamic one (importing the core in a fresh
interpreter loads none of the forbidden modules that a bare interpreter does not load).
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CORE = "swarmfold.core"

#: Top-level modules the core may import.
ALLOWED = frozenset(
    {
        "__future__",
        "typing",
        "collections",
        "math",
        "functools",
        "itertools",
        "operator",
        "enum",
        "dataclasses",
        "abc",
        "attrs",
        "attr",
        "pyrsistent",
        "heapq",
        "bisect",
        "array",
        "numpy",
        "swarmfold",
    }
)
#: Parts of allowed packages that read the clock, draw random numbers or do file I/O:
#: importing them (``from numpy.random import ...``) or reaching them as an attribute
#: (``np.random.default_rng()``, ``np.load(...)``, ``a.tofile(...)``) is impure.
FORBIDDEN_SUBMODULES = frozenset({"numpy.random", "numpy.lib.npyio", "numpy.lib.format"})
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "random", "load", "loadtxt", "save", "savez", "savez_compressed", "savetxt",
        "fromfile", "tofile", "genfromtxt", "memmap", "DataSource", "datetime64",
        "timedelta64", "datetime_as_string", "busday_count", "is_busday", "busday_offset",
    }
)
#: Named explicitly so the failure says why (none of these is in ALLOWED either).
FORBIDDEN = frozenset(
    {
        "time",
        "datetime",
        "random",
        "secrets",
        "os",
        "sys",
        "io",
        "socket",
        "requests",
        "logging",
        "pathlib",
        "threading",
        "asyncio",
        "subprocess",
        "uuid",
    }
)
#: Builtins that do I/O or import dynamically, which a pure core never calls.
FORBIDDEN_CALLS = frozenset({"open", "print", "input", "breakpoint", "__import__", "exec", "eval"})
#: Modules that importing the core must not load (checked in a fresh interpreter).
FORBIDDEN_AT_RUNTIME = (
    "requests",
    "urllib3",
    "http.client",
    "urllib.request",
    "socket",
    "ssl",
    "logging",
    "random",
    "secrets",
    "subprocess",
    "asyncio",
)


def _resolve(module: str | None, level: int, package: str) -> str | None:
    """The absolute name of ``from <level dots><module> import ...`` inside ``package``."""
    if level == 0:
        return module
    parts = package.split(".")
    if level - 1 >= len(parts):
        return None
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{module}" if module else base


def _imports(tree: ast.AST, package: str) -> Iterator[tuple[int, str | None, str]]:
    """``(line, absolute module name or None, as written)`` for every import, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, alias.name
        elif isinstance(node, ast.ImportFrom):
            written = "." * node.level + (node.module or "")
            yield node.lineno, _resolve(node.module, node.level, package), written


def violations(source: str, package: str = CORE, filename: str = "<source>") -> list[str]:
    """Every impure import or I/O builtin call in ``source``, a module of ``package``."""
    tree = ast.parse(source, filename=filename)
    found: list[str] = []
    for line, name, written in _imports(tree, package):
        where = f"{filename}:{line}"
        if name is None:
            found.append(f"{where}: relative import {written!r} leaves the top-level package")
            continue
        top = name.split(".")[0]
        if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_SUBMODULES):
            found.append(f"{where}: imports {name!r}: clock, randomness or file I/O")
        elif top in FORBIDDEN:
            found.append(f"{where}: imports {name!r}: clock, randomness, I/O or logging")
        elif top not in ALLOWED:
            found.append(f"{where}: imports {name!r}, which is not in the allow-list")
        elif top == "swarmfold" and name != CORE and not name.startswith(CORE + "."):
            found.append(f"{where}: imports {name!r}; the core may import only {CORE}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_CALLS
        ):
            found.append(f"{filename}:{node.lineno}: calls {node.func.id}()")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f"{filename}:{node.lineno}: uses .{node.attr} (randomness, clock or file I/O)")
    return found


def _core_dir() -> Path:
    """The directory of the installed core package, found without importing it."""
    spec = importlib.util.find_spec(CORE)
    assert spec is not None and spec.submodule_search_locations, f"{CORE} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def _core_modules() -> list[tuple[str, Path]]:
    """``(module name, file)`` for every module of the core, subpackages included."""
    root = _core_dir()
    modules = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("").parts
        parts = rel[:-1] if rel[-1] == "__init__" else rel
        modules.append((".".join((CORE, *parts)), path))
    return modules


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


# --- the static check --------------------------------------------------------------------


def test_core_modules_are_found() -> None:
    names = {name for name, _ in _core_modules()}
    assert {CORE, f"{CORE}.events", f"{CORE}.commands", f"{CORE}.topology"} <= names


def test_core_imports_only_pure_modules() -> None:
    problems = []
    for module, path in _core_modules():
        source = path.read_text(encoding="utf-8")
        problems += violations(source, _package_of(module, path), filename=str(path))
    assert not problems, "impure core:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import os.path",
        "from datetime import datetime",
        "import logging as log",
        "from random import Random",
        "import json",
        "from swarmfold.shell.log import codec",
        "import swarmfold.shell.log.codec",
        "from .. import shell",
        "from ...x import y",
        "def f():\n    import socket\n    return socket",
        "if False:\n    from requests import get",
        "open('state.json')",
        "print('tick')",
        "m = __import__('time')",
        "from numpy.random import default_rng",
        "import numpy.random",
        "import numpy as np\nrng = np.random.default_rng(0)",
        "import numpy as np\ncounts = np.load('counts.npy')",
        "def f(a):\n    a.tofile('counts.bin')",
        "import numpy as np\nnow = np.datetime64('now')",
    ],
)
def test_checker_catches_impure_source(source: str) -> None:
    assert violations(source, CORE)


def test_checker_names_the_culprit() -> None:
    (problem,) = violations("x = 1\nimport time\n")
    assert "<source>:2" in problem and "'time'" in problem


def test_checker_accepts_pure_source() -> None:
    source = (
        "from __future__ import annotations\n"
        "import math\n"
        "from collections.abc import Mapping\n"
        "from typing import Union\n"
        "from attrs import frozen\n"
        "import pyrsistent as pyr\n"
        "import numpy as np\n"
        "counts = np.zeros(3, dtype=np.int32)\n"
        "from swarmfold.core.events import Event\n"
        "from swarmfold.core import commands\n"
        "from . import state\n"
        "from .resources import Scale\n"
    )
    assert violations(source, CORE) == []


def test_relative_imports_resolve_against_the_package() -> None:
    assert _resolve("events", 1, CORE) == f"{CORE}.events"
    assert _resolve(None, 1, CORE) == CORE
    assert _resolve("shell", 2, CORE) == "swarmfold.shell"
    assert _resolve("x", 3, CORE) is None
    assert _resolve("time", 0, CORE) == "time"


# --- the dynamic check -------------------------------------------------------------------


def _loaded_modules(imports: list[str], tmp_path: Path) -> set[str]:
    """``sys.modules`` of a fresh interpreter after importing ``imports`` (in order)."""
    code = "import os, sys\n"
    code += "".join(f"__import__({name!r})\n" for name in imports)
    code += "print(sorted(sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, f"importing {imports} failed:\n{result.stderr}"
    loaded = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    assert isinstance(loaded, list)
    return set(loaded)


def _forbidden(modules: set[str]) -> set[str]:
    return {
        m for m in modules for f in FORBIDDEN_AT_RUNTIME if m == f or m.startswith(f + ".")
    }


def test_importing_core_loads_no_io_modules(tmp_path: Path) -> None:
    baseline = _loaded_modules([], tmp_path)
    core = _loaded_modules([name for name, _ in _core_modules()], tmp_path)
    assert CORE in core and f"{CORE}.events" in core
    added = core - baseline
    assert not _forbidden(added), f"importing {CORE} loads {sorted(_forbidden(added))}"


def test_runtime_check_would_notice(tmp_path: Path) -> None:
    baseline = _loaded_modules([], tmp_path)
    noisy = _loaded_modules(["logging", "http.client"], tmp_path)
    assert {"logging", "http.client", "socket"} <= _forbidden(noisy - baseline)
