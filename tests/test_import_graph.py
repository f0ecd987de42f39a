"""The import graph of both packages, read from the source (ast), imports inside functions
included: no cycles anywhere, and hw_models uses nothing of neurosim but the model contract
(neurosim.model and the float helpers of neurosim.rules and neurosim.lyapunov). Importing
either package changes no global state (no matplotlib backend switch)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("neurosim", "hw_models")
MODEL_CONTRACT = ("neurosim.model", "neurosim.rules", "neurosim.lyapunov")
LAZY_PACKAGES = ("neurosim", "hw_models")  # their __init__ imports nothing (PEP 562 names)


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports anywhere in its file (``from pkg import sub`` counts as
    importing ``pkg.sub`` when that is a module). Importing ``a.b.c`` also runs the ``__init__``
    of ``a`` and ``a.b``: those count too, unless they are ``name``'s own packages (already
    being initialised when ``name`` runs)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + [base]).strip(".")
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            while t:
                if t != name and not name.startswith(f"{t}."):
                    found.add(t)
                t = t.rpartition(".")[0]
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(m, p, set(mods)) for m, p in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in g:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_anywhere():
    assert cycles(graph()) == []


def test_hw_models_uses_only_the_model_contract_of_neurosim():
    bad = {(m, t) for m, ts in graph().items() if m.startswith("hw_models")
           for t in ts if t.startswith("neurosim") and not t.startswith(MODEL_CONTRACT) and t != "neurosim"}
    assert bad == set()


def test_the_checks_fail_on_a_cycle_and_on_a_forbidden_import():
    """The verifier itself: a made-up graph with a cycle and an hw_models → neurosim.sweep edge."""
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    fake = {"hw_models.spec.export": {"neurosim.sweep", "neurosim.model"}}
    bad = {t for ts in fake.values() for t in ts if not t.startswith(MODEL_CONTRACT)}
    assert bad == {"neurosim.sweep"}


def test_the_package_faces_import_nothing_until_a_name_is_used():
    g = graph()
    face = {"hw_models", "hw_models._lazy"}  # the helper that makes the faces lazy
    assert {p: g[p] - face for p in LAZY_PACKAGES} == {p: set() for p in LAZY_PACKAGES}
    code = ("import sys, neurosim, hw_models; loaded = [m for m in sys.modules if m.startswith(('neurosim.', "
            "'hw_models.'))]; assert loaded == ['hw_models._lazy'], loaded; "
            "from neurosim import TrainConfig, train; "
            "from hw_models import QFormat; assert callable(train) and QFormat")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_importing_the_packages_keeps_the_matplotlib_backend():
    code = "import neurosim, hw_models, matplotlib; assert matplotlib.get_backend() == 'svg'"
    env = {"MPLBACKEND": "svg", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
