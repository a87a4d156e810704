"""Rules of the house, checked on the source: the run and sweep directories are spelled in one place
(``facebench.rundir``), only the command line prints, and compare's job packages use each other's
public names only.

A file name of either directory written as a string literal anywhere else in the package
(outside docstrings) fails here: the code must use the names ``rundir`` defines, so that a
renamed or moved file cannot leave a reader behind.
"""

import ast
from pathlib import Path

import pytest

import facebench
from facebench.rundir import layout, sweepdir

PACKAGE = Path(facebench.__file__).parent
RUNDIR = PACKAGE / "rundir"


def _names(module, suffixes) -> set[str]:
    return {v for k, v in vars(module).items() if k.isupper() and k.endswith(suffixes) and isinstance(v, str)}


#: File names (with an extension): flagged wherever they appear as a literal.
FILES = {n for n in _names(layout, ("_FILE", "_PREDICTIONS", "_METRICS", "_TIMING", "_HISTORY", "_MANIFEST", "_MODEL"))
         | _names(sweepdir, ("_FILE",)) if "." in n.lstrip(".")}
#: Folder names are ordinary words ("units", "views", "tables"): flagged when joined to a path.
FOLDERS = _names(layout, ("_DIR",))


def _docstrings(tree) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _template_names(tree) -> set[int]:
    """The first argument of ``render(...)``: a Jinja2 template's name (``report.html`` too)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and getattr(node.func, "id", getattr(node.func, "attr", "")) == "render":
            ids.add(id(node.args[0]))
    return ids


def literal_uses(source: str) -> list[tuple[int, str]]:
    """(line, name) of every run- or sweep-directory name spelled as a literal in ``source``."""
    tree = ast.parse(source)
    docs = _docstrings(tree) | _template_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if node.value in FILES:
                found.append((node.lineno, node.value))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = node.right
            if isinstance(right, ast.Constant) and right.value in FOLDERS:
                found.append((right.lineno, right.value))
    return found


def test_the_names_are_known():
    assert {"metrics.csv", "split.csv", "config.toml", "points.csv", "best.toml", "sweep.json"} <= FILES
    assert {"units", "views", "tables", "histories"} <= FOLDERS


def test_the_check_finds_a_literal():
    code = ('def f(d):\n    """Reads metrics.csv."""\n    return d / "split.csv", d / "units", {"units": 1}\n'
            'render("report.html")\n')
    assert sorted(literal_uses(code)) == [(3, "split.csv"), (3, "units")]


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.rglob("*.py") if RUNDIR not in p.parents),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_run_or_sweep_file_is_spelled_outside_rundir(path):
    uses = literal_uses(path.read_text(encoding="utf-8"))
    assert not uses, f"{path.relative_to(PACKAGE)} spells {uses}: use the names of facebench.rundir"


# ---- the command line prints; nothing below it does -------------------------------------


def prints(source: str) -> list[int]:
    """Lines of ``source`` that call ``print``."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"]


def test_the_print_check_finds_a_print():
    assert prints("def f():\n    x = 1\n    print(x)\n") == [3]


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.rglob("*.py") if p.name != "cli.py"),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_command_line_prints(path):
    lines = prints(path.read_text(encoding="utf-8"))
    assert not lines, (f"{path.relative_to(PACKAGE)} prints on lines {lines}: say it through "
                       "facebench.console.say (or return it) and let the command line print")


# ---- compare by job: no package reaches into another's private names ---------------------

COMPARE = PACKAGE / "compare"


def _job(module: str) -> str | None:
    """``planning`` for ``facebench.compare.planning.plan``; None outside compare's job packages."""
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[:2] == ["facebench", "compare"] else None


def private_reaches(source: str, module: str) -> list[str]:
    """``module.name`` of every private name ``source`` (module ``module``) imports from another
    job package of compare."""
    own = _job(module)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            job = _job(node.module) or (node.module.split(".")[2] if node.module.count(".") == 2
                                         and node.module.startswith("facebench.compare.") else None)
            if job and job != own:
                found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


def test_the_private_name_check_finds_a_reach():
    code = "from facebench.compare.planning.config import _check, merge\nfrom facebench.compare.search.study import _x\n"
    assert private_reaches(code, "facebench.compare.search.sweep_config") == ["facebench.compare.planning.config._check"]


@pytest.mark.parametrize("path", sorted(COMPARE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_compare_s_packages_use_each_other_s_public_names_only(path):
    module = ".".join(("facebench", *path.relative_to(PACKAGE).with_suffix("").parts))
    assert not private_reaches(path.read_text(encoding="utf-8"), module)


# ---- a package's names never hide its modules ----------------------------------------------


def test_no_package_exports_a_name_that_hides_one_of_its_modules():
    """``import facebench.x.y as m`` must give module ``y``, not a function ``y`` the package exports."""
    import importlib
    import pkgutil
    import types

    hidden = []
    for info in pkgutil.walk_packages(facebench.__path__, "facebench."):
        if not info.ispkg:
            continue
        package = importlib.import_module(info.name)
        for sub in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{info.name}.{sub.name}")
            if not isinstance(getattr(package, sub.name, None), types.ModuleType):
                hidden.append(f"{info.name}.{sub.name}")
    assert not hidden
