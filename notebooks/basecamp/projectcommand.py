"""How a project's container starts: the command, found the way a person would (for basecamp.project).

Without `command=`, the rules are tried in this order, the first that applies wins:

1. a web app object — a top-level `app = ...` in `<pkg>.main` or `<pkg>.app` (read with `ast`,
   never imported) — served by a server the project's main dependencies include: uvicorn
   (`uvicorn pkg.main:app --host 0.0.0.0 --port <port>`; `--interface wsgi` for a WSGI app) or
   gunicorn (`gunicorn -b 0.0.0.0:<port> pkg.main:app`; with `-k uvicorn.workers.UvicornWorker`
   for an ASGI app when uvicorn is there too). It comes first because a service is what the steps
   build, and this is how real services start: a project with both an `app` and a script
   usually has the script for development (`main()` calling `uvicorn.run(...)`, or a CLI);
2. a script of `[project.scripts]` / `[tool.poetry.scripts]` (the one named like the project,
   else the first). The steps install dependencies with `--no-root`, so the script's console
   wrapper is not in the runtime venv: its target runs as
   `python -c "import sys; from pkg.mod import func; sys.exit(func())"`;
3. `python -m pkg` for a package with `__main__.py`, else `python -m pkg.main` for a `main.py`
   with an `if __name__ == "__main__":` block.

Nothing found: InputError naming everything tried and showing `command=[...]`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from basecamp.errors import InputError
from basecamp.projectlayout import Layout, Package, module_name

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_APP_REF = re.compile(r"^([A-Za-z_][\w.]*):[A-Za-z_][\w.]*(\(\))?$")
#: Frameworks whose app object speaks ASGI / WSGI, by the class called or the module imported.
ASGI = {"FastAPI", "Starlette", "Quart", "Litestar", "Sanic", "fastapi", "starlette", "quart", "litestar",
        "sanic", "falcon.asgi"}
WSGI = {"Flask", "Bottle", "flask", "bottle", "django", "pyramid", "falcon"}


@dataclass(frozen=True)
class Command:
    """What the container runs (`argv`, exec form, no `poetry run`), the module whose code it runs, and why."""

    argv: tuple[str, ...]
    module: str
    reason: str


def source_module(package: Package) -> str | None:
    """The dotted path of a package that sits under a folder ("src.app" for src/app), else None.

    Some projects import their code by that path (`from src.app.routes import ...`, started as
    `uvicorn src.app.main:app` from the project folder) rather than by the package's import name.
    """
    if package.is_module or not package.in_src:
        return None
    dotted = package.source.replace("/", ".")
    return dotted if _DOTTED.match(dotted) else None


def _under(package: Package, module: str) -> str | None:
    """What of `module` lies inside `package` ("" for the package itself), by its import name or its
    source path (source_module); None when `module` is not in it."""
    for prefix in (package.name, source_module(package)):
        if prefix and (module == prefix or module.startswith(prefix + ".")):
            return module[len(prefix) + 1:]
    return None


def imports_by_source(packages: Sequence[Package], module: str) -> tuple[Package, ...]:
    """The packages `module` is imported through their source path (`src.app.main` for src/app)."""
    return tuple(p for p in packages if (dotted := source_module(p)) and
                 (module == dotted or module.startswith(dotted + ".")))


def module_file(root: Path, packages: Sequence[Package], module: str, *, runs: bool = True) -> str | None:
    """The file that defines `module` (`runs`: the one `python -m module` runs: a package's __main__.py),
    relative to root; None when the project has no such module."""
    for p in packages:
        rest = _under(p, module)
        if rest is None:
            continue
        if p.is_module:
            return p.source if not rest else None
        base = "/".join([p.source, *rest.split(".")]) if rest else p.source
        if (root / f"{base}.py").is_file():
            return f"{base}.py"
        for name in ("__main__.py", "__init__.py") if runs else ("__init__.py",):
            if (root / base / name).is_file():
                return f"{base}/{name}"
    return None


@dataclass(frozen=True)
class _Facts:
    """What `ast` tells of a module: its top-level `app` (and the framework), its `__main__` block."""

    app_kind: str | None  # "ASGI", "WSGI", "unknown" (an `app` of no framework the lab knows), None: no `app`
    framework: str
    main_block: bool


def _name_of(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        return _name_of(node.func)
    if isinstance(node, ast.Attribute):
        return f"{_name_of(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _is_main_test(test: ast.expr) -> bool:
    """`__name__ == "__main__"` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return {_name_of(n) if isinstance(n, ast.Name) else getattr(n, "value", None) for n in sides} == \
        {"__name__", "__main__"}


def _assigns_app(node: ast.stmt) -> bool:
    """`app = ...` or `app: T = ...` at the top level."""
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == "app" for t in node.targets)
    return isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "app" \
        and node.value is not None


def _imports_itself_by_source(root: Path, package: Package) -> bool:
    """Some module of `package` imports it by its source path (`from src.app.x import y` for src/app)."""
    dotted = source_module(package)
    if dotted is None:
        return False
    for file in sorted((root / package.source).rglob("*.py")):
        try:
            tree = ast.parse(file.read_text(errors="replace"), str(file))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            if any(n == dotted or n.startswith(dotted + ".") for n in names):
                return True
    return False


def _facts(path: Path) -> _Facts:
    try:
        tree = ast.parse(path.read_text(errors="replace"), str(path))
    except SyntaxError:
        return _Facts(None, "", False)
    imports: list[str] = []
    app: ast.expr | None = None
    main_block = False
    for node in tree.body:
        if isinstance(node, ast.Import):
            imports += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imports.append(node.module)
        elif _assigns_app(node):
            app = node.value  # type: ignore[attr-defined]
        elif isinstance(node, ast.If) and _is_main_test(node.test):
            main_block = True
    if app is None:
        return _Facts(None, "", main_block)
    called = _name_of(app).rsplit(".", 1)
    tail, dotted = called[-1], _name_of(app)
    if dotted.startswith("falcon.asgi") or tail in ASGI:
        return _Facts("ASGI", tail, main_block)
    if tail in WSGI or (dotted.startswith("falcon.") and tail == "App"):
        return _Facts("WSGI", tail, main_block)
    for mod in imports:  # app = create_app(): the framework the module imports
        for name in (mod, mod.split(".")[0]):
            if name in ASGI or name in WSGI:
                return _Facts("ASGI" if name in ASGI else "WSGI", name, main_block)
    return _Facts("unknown", "", main_block)


def _serve(ref: str, rel: str, facts: _Facts, deps: frozenset[str], port: int) -> Command | str:
    """The server command for app `ref` (pkg.main:app), or why none applies."""
    kind = facts.app_kind
    what = f"{rel} defines `app`" + (f" ({kind}: {facts.framework})" if facts.framework else "")
    module = ref.split(":")[0]
    if "gunicorn" in deps and kind in ("WSGI", "unknown"):
        return Command(("gunicorn", "-b", f"0.0.0.0:{port}", ref), module,
                       f"gunicorn serves {ref}: the project depends on gunicorn and {what}")
    if "gunicorn" in deps and kind == "ASGI" and ({"uvicorn", "uvicorn-worker"} & deps):
        worker = "uvicorn_worker.UvicornWorker" if "uvicorn-worker" in deps else "uvicorn.workers.UvicornWorker"
        return Command(("gunicorn", "-k", worker, "-b", f"0.0.0.0:{port}", ref), module,
                       f"gunicorn with uvicorn workers serves {ref}: the project depends on gunicorn and uvicorn "
                       f"and {what}")
    if "uvicorn" in deps:
        wsgi = ("--interface", "wsgi") if kind == "WSGI" else ()
        return Command(("uvicorn", ref, "--host", "0.0.0.0", "--port", str(port), *wsgi), module,
                       f"uvicorn serves {ref}: the project depends on uvicorn and {what}")
    return f"{what}, but the main dependencies include neither uvicorn nor gunicorn to serve it"


def _script(name: str, target: str, table: str, root: Path, layout: Layout) -> Command | str:
    module, _, attr = target.partition(":")
    if not (_DOTTED.match(module) and _DOTTED.match(attr)):
        return f"script {name!r} = {target!r} in {table} is not `module:function`"
    head = attr.partition(".")[0]
    call = f"{attr}()"
    code = f"import sys; from {module} import {head}; sys.exit({call})"
    where = "" if module_file(root, layout.packages, module) else f" (note: {module} is not among the project's packages)"
    return Command(("python", "-c", code), module,
                   f"the script {name!r} ({target}, {table}) runs as `python -c`: the steps install dependencies "
                   f"with --no-root, so its console wrapper is not in the runtime venv{where}")


def detect(root: Path, layout: Layout, port: int) -> Command:
    """The command by the rules of the module doc; InputError naming everything tried."""
    tried: list[str] = []
    deps = layout.main_dependencies
    # 1. a web app object and a server to serve it
    for p in layout.packages:
        prefix = p.name
        if source_module(p) and _imports_itself_by_source(root, p):
            prefix = str(source_module(p))  # its code says `from src.app... import`: started as src.app.main
        candidates = [p.name] if p.is_module else [f"{prefix}.main", f"{prefix}.app"]
        for module in candidates:
            if p.is_module and p.name not in ("main", "app"):
                continue
            rel = module_file(root, layout.packages, module, runs=False)
            if rel is None:
                tried.append(f"an `app` in {module} (no such module)")
                continue
            facts = _facts(root / rel)
            if facts.app_kind is None:
                tried.append(f"an `app` in {rel} (none at top level)")
                continue
            served = _serve(f"{module}:app", rel, facts, deps, port)
            if isinstance(served, Command):
                return served
            tried.append(served)
    # 2. a script
    scripts = list(layout.scripts)
    if scripts:
        own = [s for s in scripts if module_name(s[0]) == module_name(layout.name)]
        name, target, table = (own or scripts)[0]
        found = _script(name, target, table, root, layout)
        if isinstance(found, Command):
            if len(scripts) > 1:
                others = ", ".join(repr(s[0]) for s in scripts if s[0] != name)
                found = Command(found.argv, found.module, f"{found.reason} (chosen over {others}: "
                                f"{'named like the project' if own else 'the first listed'})")
            return found
        tried.append(found)
    else:
        tried.append("a script in [project.scripts] or [tool.poetry.scripts] (none)")
    # 3. python -m
    for p in layout.packages:
        if p.is_module:
            if _facts(root / p.source).main_block:
                return Command(("python", "-m", p.name), p.name,
                               f"python -m {p.name}: {p.source} has an `if __name__ == \"__main__\":` block")
            continue
        if (root / p.source / "__main__.py").is_file():
            return Command(("python", "-m", p.name), p.name, f"python -m {p.name}: {p.source}/__main__.py exists")
        main = root / p.source / "main.py"
        if main.is_file() and _facts(main).main_block:
            return Command(("python", "-m", f"{p.name}.main"), f"{p.name}.main",
                           f"python -m {p.name}.main: {p.source}/main.py has an `if __name__ == \"__main__\":` block")
        tried.append(f"{p.source}/__main__.py, or {p.source}/main.py with an `if __name__ == \"__main__\":` block")
    first = layout.packages[0].name
    raise InputError(f"{root}: the lab cannot tell how the app starts. Tried: {'; '.join(tried)}. Say it: "
                     f"use_project(..., command=[\"uvicorn\", \"{first}.main:app\", \"--host\", \"0.0.0.0\", "
                     f"\"--port\", \"{port}\"]) (exec form; the runtime venv's tools are on PATH)")


def given(root: Path, layout: Layout, command: Sequence[str]) -> Command:
    """`command=` as given: checked, and the module whose code it runs found when it names one."""
    if isinstance(command, str) or not command or not all(isinstance(a, str) and a for a in command):
        raise InputError(f"command {command!r}: give the exec-form list, e.g. "
                         "['uvicorn', 'pkg.main:app', '--host', '0.0.0.0', '--port', '8000']")
    argv = tuple(command)
    module = ""
    for i, arg in enumerate(argv):
        m = _APP_REF.match(arg)
        candidate = m[1] if m else (argv[i + 1] if arg == "-m" and i + 1 < len(argv) else "")
        if candidate and module_file(root, layout.packages, candidate):
            module = candidate
            break
    return Command(argv, module or layout.packages[0].name, "given as command=")


def from_module(root: Path, layout: Layout, module: str) -> Command:
    """`module=`: `python -m module`, checked to exist in the project."""
    if not _DOTTED.match(module):
        raise InputError(f"module {module!r}: write a dotted module name, e.g. 'my_app.main'")
    if module_file(root, layout.packages, module) is None:
        path = module.replace(".", "/")
        raise InputError(f"{root}: module {module!r} not found in the project's packages "
                         f"({', '.join(p.source for p in layout.packages)}): no {path}.py or {path}/__main__.py")
    return Command(("python", "-m", module), module, f"python -m {module}: given as module=")
