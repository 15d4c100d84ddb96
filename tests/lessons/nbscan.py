"""Reading the series' notebooks and documents for the lesson tests (docs/lesson-style.md says why).

Every function takes the checkout's root (default: the one this file sits in), so the same tests can
check another tree, e.g. an old commit in a worktree. Each finding is a `Finding`: where (file and
cell index), what was found, and what an author should do about it.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


@dataclass(frozen=True)
class Finding:
    """One problem: `where` is "01_naive.ipynb cell 8" or "README.md line 12"."""

    where: str
    found: str
    fix: str

    def __str__(self) -> str:
        return f"{self.where}: {self.found}\n    -> {self.fix}"


def report(findings: Iterable[Finding], what: str) -> str:
    items = list(findings)
    return f"{len(items)} {what}:\n" + "\n".join(f"  {f}" for f in items)


# ---------------------------------------------------------------- files and cells


def notebook_paths(root: Path = ROOT) -> list[Path]:
    """The series' notebooks, `notebooks/NN_name.ipynb`, in order."""
    return sorted((root / "notebooks").glob(NOTEBOOK_GLOB))


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def cells(nb: dict, kind: str | None = None) -> Iterator[tuple[int, dict]]:
    """(index, cell) of every cell, or of every cell of `kind` ("markdown", "code")."""
    for i, cell in enumerate(nb.get("cells", [])):
        if kind is None or cell.get("cell_type") == kind:
            yield i, cell


def where(path: Path, index: int | None = None, line: int | None = None) -> str:
    out = Path(path).name if Path(path).suffix == ".ipynb" else str(path)
    if index is not None:
        out += f" cell {index}"
    if line is not None:
        out += f" line {line}"
    return out


# ---------------------------------------------------------------- markdown text

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def without_fenced_code(text: str) -> str:
    """`text` with every fenced code block (``` or ~~~) blanked; lines keep their numbers."""
    out, fence = [], None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append("")
        elif fence is not None:
            if line.strip().startswith(fence):
                fence = None
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def strip_inline_markup(text: str) -> str:
    """Plain prose to scan: link targets, URLs and HTML tags go; bold, italics and code marks go."""
    text = re.sub(r"\]\([^)\s]*(?:\s+\"[^\"]*\")?\)", "]", text)  # [text](target) -> [text]
    text = re.sub(r"<https?://[^>]*>", " ", text)
    text = re.sub(r"\bhttps?://\S+", " ", text)
    text = re.sub(r"</?[A-Za-z][^>]*>", " ", text)
    return text.replace("**", "").replace("`", "").replace("*", "")


# ---------------------------------------------------------------- measured-looking quantities

_NUMBER_WORDS = "two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|a hundred|hundred"
_NUM = r"(?<![\w.:/#=@])(?<!\w-)\d+(?:[.,]\d+)?(?![.,]?\d)"  # not inside a name, path, version or tag
_SEP = r"[ \u00a0\u2009\u202f-]?"
_QUANTITY = re.compile(
    rf"""
    (?P<q>
      {_NUM}(?:\s*(?:–|-|to)\s*\d+(?:[.,]\d+)?)?          # 5, 1.1, 3-4, 10 to 12
      (?:
          {_SEP}(?:[kKMGTP]i?B|[kmgt]b|B|bytes?)\b          # 877 MB, 24 GiB, 4 kB, 200 bytes
        | (?:[KMGT])\b                                      # 141M, 2G (du -h style: no space)
        | {_SEP}(?:ms|µs|sec|secs|seconds?|s|min|mins|minutes?|hours?|hrs?)\b  # 0.7 s, 3 min
        | (?:h)\b                                           # 2h
        | \s?×                                              # 6.5×, 6 ×
        | x\b                                               # 6x
        | \s?(?:%|percent\b)                                # 40 %
        | \s+times\b                                        # 3 times
        | \s+(?:wheels?|packages?|downloads?|modules?|files|layers?|whiteouts?)\b  # measured counts: 14 wheels
      )
    | \b(?:{_NUMBER_WORDS})\s+times\s+(?:smaller|bigger|larger|faster|slower|more|less|fewer|as)\b
    | \b(?:twice|half)\s+(?:as\s+)?(?:big|small|large|fast|slow|long|many|much)\b
    )
    """,
    re.VERBOSE,
)


def normalize(quantity: str) -> str:
    """"6.5 ×" and "6.5x" alike, "1.1 GB" and "1.1GB" alike: for comparing with allowed figures."""
    q = quantity.replace("×", "x").replace("\u00a0", " ").replace("\u2009", " ").replace("\u202f", " ")
    return re.sub(r"[\s-]+", "", q).lower()


@dataclass(frozen=True)
class Allowed:
    """An exception: `quantity` may stand in a markdown line that also contains `near` (case-insensitive),
    in the files whose name matches `files` (a glob) — for the reason given in `why`."""

    quantity: str
    near: str
    why: str
    files: str = "*"


@dataclass(frozen=True)
class Quantity:
    line: int  # 1-based, within the cell
    text: str  # the quantity as matched
    context: str  # the line it stands in (shortened)


def quantities(markdown: str) -> list[Quantity]:
    """Every measured-looking quantity in a markdown text, outside fenced code blocks."""
    found = []
    for n, raw in enumerate(without_fenced_code(markdown).split("\n"), start=1):
        line = strip_inline_markup(raw)
        for m in _QUANTITY.finditer(line):
            text = m.group("q").strip()
            if re.fullmatch(r"\d+\.\d+\.\d+.*", text):  # a version such as 2.5.1
                continue
            context = raw.strip()
            found.append(Quantity(n, text, context if len(context) <= 120 else context[:117] + "..."))
    return found


def is_time_line(line: str) -> bool:
    return line.strip().startswith("**Time:**")


def markdown_number_findings(path: Path, published: Iterable[str], exceptions: Iterable[Allowed] = (),
                             label: str | Path | None = None,
                             allow: Callable[[Quantity], bool] | None = None) -> list[Finding]:
    """Measured-looking quantities in the markdown of a notebook or a .md file.

    Allowed: the article's `published` figures, the `**Time:**` line of a notebook's first cell,
    anything inside fenced code, and `exceptions`."""
    path = Path(path)
    allowed = {normalize(p) for p in published}
    exceptions = list(exceptions)
    if path.suffix == ".ipynb":
        texts = []
        for i, c in cells(load(path)):
            if c.get("cell_type") == "markdown":
                texts.append((i, source(c)))
            elif c.get("cell_type") == "code":
                texts += [(i, text) for text in say_texts(source(c))]
    else:
        texts = [(None, path.read_text(encoding="utf-8"))]
    findings = []
    for index, text in texts:
        lines = text.split("\n")
        for q in quantities(text):
            line = lines[q.line - 1]
            if index == 0 and path.suffix == ".ipynb" and is_time_line(line):
                continue  # the lesson's own **Time:** line (docs/lesson-style.md)
            if normalize(q.text) in allowed or (allow and allow(q)):
                continue
            if any(normalize(e.quantity) == normalize(q.text) and e.near.lower() in line.lower()
                   and Path(path.name).match(e.files) for e in exceptions):
                continue
            findings.append(Finding(
                where(label or path, index, q.line), f"{q.text!r} in: {q.context}",
                "a number measured on the learner's machine must not be typed into markdown: render the sentence "
                "from the measurement with bc.say(f\"...\") in a code cell (docs/lesson-style.md), quote the "
                "article through basecamp.article, or drop the number"))
    return findings


# ---------------------------------------------------------------- code cells' string literals


def _python_source(code: str) -> str:
    """Cell source with IPython magics and shell escapes blanked, so `ast` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.split("\n"))


def string_literals(code: str) -> list[str]:
    """The string constants of a code cell (f-strings' literal parts included). Unparsable code: the
    whole text, so nothing is silently skipped."""
    try:
        tree = ast.parse(_python_source(code))
    except SyntaxError:
        return [code]
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def _calls(code: str) -> list[tuple[str, ast.Call]]:
    """(called name, call) for every call with at least one positional argument in `code`."""
    try:
        tree = ast.parse(_python_source(code))
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            out.append((func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""), node))
    return out


def say_texts(code: str) -> list[str]:
    """The literal parts of the text given to `say(...)` / `bc.say(...)`: what a learner reads as prose. The
    parts an f-string formats in are left out (they come from measurements); a number typed into the
    literal part is as stale as one typed into a markdown cell."""
    out = []
    for name, node in _calls(code):
        arg = node.args[0]
        if name != "say":
            continue
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            out.append(arg.value)
        elif isinstance(arg, ast.JoinedStr):
            # the formatted values become a neutral placeholder, so "{size} MB" is not "877 MB"
            out.append("".join(v.value if isinstance(v, ast.Constant) else "\u2063" for v in arg.values))
    return out


def call_string_args(code: str) -> list[tuple[str, str]]:
    """(function name, first argument) of every call whose first argument is a string constant."""
    return [(name, node.args[0].value) for name, node in _calls(code)
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)]


# ---------------------------------------------------------------- headings and anchors


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: inline markup and punctuation dropped, lowercase, spaces -> hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links -> their text
    text = re.sub(r"</?[A-Za-z][^>]*>", "", text)  # HTML tags
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # keeps letters, digits, _, -, space
    return text.replace(" ", "-")


_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_EXPLICIT_ANCHOR = re.compile(r"""<[A-Za-z][^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""")


def headings(markdown: str) -> list[str]:
    return [m.group(2) for line in without_fenced_code(markdown).split("\n") if (m := _HEADING.match(line))]


def anchors_of_text(markdown: str) -> set[str]:
    """Anchors a markdown text defines: its headings' GitHub slugs (-1, -2 for repeats) and `<a id=...>`."""
    out, seen = set(), {}
    for heading in headings(markdown):
        slug = github_slug(heading)
        n = seen.get(slug, 0)
        out.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    out.update(_EXPLICIT_ANCHOR.findall(markdown))
    return out


def document_markdown(path: Path) -> str:
    """All the markdown of a file: a notebook's markdown cells joined, or a .md file's text."""
    path = Path(path)
    if path.suffix == ".ipynb":
        return "\n\n".join(source(c) for _, c in cells(load(path), "markdown"))
    return path.read_text(encoding="utf-8")


def anchors(path: Path) -> set[str]:
    return anchors_of_text(document_markdown(path))


# ---------------------------------------------------------------- references

_NOTEBOOK_FILE = re.compile(r"\b(\d{2}_[A-Za-z0-9_]+\.ipynb)\b")
_DOCKERFILE_PATH = re.compile(r"\b(dockerfiles/[\w./-]*?\.Dockerfile)\b")
_BARE_DOCKERFILE = re.compile(r"(?<![\w/.-])(\d{2}[a-z]?-[\w-]+\.Dockerfile)\b")
_NOTEBOOK_WORD = re.compile(
    r"\bnotebooks?\s+(\d{1,2}(?:\s*(?:,|and|or|&|–|-|to)\s*\d{1,2}\b)*)", re.IGNORECASE)
_STEP_WORD = re.compile(
    r"\bsteps?\s+(\d{1,2}[a-z]?(?:\s*(?:,|and|or|&|–|-|to)\s*\d{1,2}[a-z]?\b)*)(?!\w|\.\d)", re.IGNORECASE)
_LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_STEP_ARG = re.compile(r"\d{2}[a-z]?")


def _numbers(group: str) -> list[str]:
    return re.findall(r"\d{1,2}[a-z]?", group)


@dataclass(frozen=True)
class Tree:
    """What exists in a checkout: notebooks by number, Dockerfiles by name, step Dockerfiles by step."""

    root: Path

    @property
    def notebook_names(self) -> set[str]:
        return {p.name for p in notebook_paths(self.root)}

    @property
    def notebook_numbers(self) -> set[int]:
        return {int(p.name[:2]) for p in notebook_paths(self.root)}

    @property
    def dockerfile_names(self) -> set[str]:
        return {p.name for p in (self.root / "dockerfiles").rglob("*.Dockerfile")}

    @property
    def steps(self) -> set[str]:
        """Step ids with a step Dockerfile (dockerfiles/NN-*.Dockerfile): "01", "03b", ..."""
        out = set()
        for p in (self.root / "dockerfiles").glob("*.Dockerfile"):
            m = re.match(r"(\d{2}[a-z]?)-", p.name)
            if m:
                out.add(m.group(1))
        return out


def _step_id(n: str) -> str:
    m = re.fullmatch(r"(\d{1,2})([a-z]?)", n.lower())
    return f"{int(m.group(1)):02d}{m.group(2)}" if m else n


#: In a code cell's string, `[x](y)` is a markdown link only when y looks like one (a file with an extension,
#: a folder, an anchor): a shell regex such as `[.](create|in-project)` is not.
_LINKISH = re.compile(r"^(?:[\w./-]+\.[A-Za-z]{2,10}|[\w./-]*/)?(?:#[\w-]+)?$")


def text_reference_findings(text: str, where_: str, tree: Tree, base_dir: Path, self_path: Path | None,
                            self_anchors: set[str] | None, check_links: bool = True,
                            in_code: bool = False) -> list[Finding]:
    """Broken references in one text (a markdown cell, a string literal, a .md file)."""
    out = []
    for name in _NOTEBOOK_FILE.findall(text):
        if name not in tree.notebook_names:
            out.append(Finding(where_, f"names {name}, which does not exist",
                               f"use one of the series' notebooks: {', '.join(sorted(tree.notebook_names))}"))
    for rel in _DOCKERFILE_PATH.findall(text):
        if not (tree.root / rel).is_file():
            out.append(Finding(where_, f"names {rel}, which does not exist",
                               "point at a Dockerfile that exists under dockerfiles/ (steps were renumbered: 08-uv, 09-hardened-runtime)"))
    for name in _BARE_DOCKERFILE.findall(text):
        if name not in tree.dockerfile_names:
            out.append(Finding(where_, f"names {name}, which does not exist under dockerfiles/",
                               f"use an existing one: {', '.join(sorted(tree.dockerfile_names))}"))
    for m in _NOTEBOOK_WORD.finditer(text):
        for n in _numbers(m.group(1)):
            if int(re.sub(r"\D", "", n)) not in tree.notebook_numbers:
                out.append(Finding(where_, f"{m.group(0)!r} refers to notebook {n}, which does not exist",
                                   f"the notebooks are numbered {min(tree.notebook_numbers):02d}–{max(tree.notebook_numbers):02d}; renumber the reference"))
    for m in _STEP_WORD.finditer(text):
        for n in _numbers(m.group(1)):
            if _step_id(n) not in tree.steps:
                out.append(Finding(where_, f"{m.group(0)!r} refers to step {n}, which has no dockerfiles/{_step_id(n)}-*.Dockerfile",
                                   f"the steps are {', '.join(sorted(tree.steps))}; renumber the reference (or say 'notebook NN' for a notebook that is not a step)"))
    if check_links:
        for target in _LINK.findall(re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", " ", text, flags=re.DOTALL)):  # not in `code`
            if in_code and not (target and _LINKISH.match(target)):
                continue
            out.extend(link_findings(target, where_, tree, base_dir, self_path, self_anchors))
    return out


def link_findings(target: str, where_: str, tree: Tree, base_dir: Path, self_path: Path | None,
                  self_anchors: set[str] | None) -> list[Finding]:
    if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("/"):
        return []  # http:, mailto:, data:, absolute: not ours to check
    path_part, _, anchor = target.partition("#")
    if not path_part:
        if self_anchors is not None and anchor not in self_anchors:
            return [Finding(where_, f"link to #{anchor}: no heading or <a id> of this document has that anchor",
                            f"anchors here: {', '.join(sorted(self_anchors)) or 'none'}")]
        return []
    from urllib.parse import unquote

    dest = (base_dir / unquote(path_part)).resolve()
    if not dest.exists():
        return [Finding(where_, f"link to {target}: {path_part} does not exist (relative to {base_dir.relative_to(tree.root) if base_dir.is_relative_to(tree.root) else base_dir})",
                        "link to a file that exists, relative to the document that links")]
    if anchor and dest.is_file() and dest.suffix in (".md", ".ipynb"):
        found = anchors(dest)
        if anchor not in found:
            return [Finding(where_, f"link to {target}: {dest.name} has no heading or <a id> with anchor #{anchor}",
                            f"anchors in {dest.name}: {', '.join(sorted(found)) or 'none'}")]
    return []


def notebook_reference_findings(path: Path, root: Path = ROOT) -> list[Finding]:
    """Broken references in a notebook: its markdown cells, its code cells' string literals, and step ids
    given to calls such as bc.measure_step("08")."""
    tree = Tree(root)
    nb = load(path)
    own = anchors(path)
    out = []
    for i, cell in cells(nb):
        if cell.get("cell_type") == "markdown":
            out += text_reference_findings(source(cell), where(path, i), tree, path.parent, path, own)
        elif cell.get("cell_type") == "code":
            code = source(cell)
            for literal in string_literals(code):
                # Prose (printed, or rendered with bc.say) has spaces; a literal without any is a value the
                # code uses (a path it writes, a tag), and executing the notebook checks it.
                if re.search(r"\s", literal):
                    out += text_reference_findings(literal, where(path, i), tree, path.parent, path, own, in_code=True)
            for func, arg in call_string_args(code):
                if _STEP_ARG.fullmatch(arg) and arg not in tree.steps:
                    out.append(Finding(where(path, i), f"{func}({arg!r}): no step {arg} (no dockerfiles/{arg}-*.Dockerfile)",
                                       f"the steps are {', '.join(sorted(tree.steps))}"))
    return out


def document_reference_findings(path: Path, root: Path = ROOT) -> list[Finding]:
    """Broken references in a .md file (README.md, docs/*.md, notebooks/*.md), outside fenced code."""
    tree = Tree(root)
    text = path.read_text(encoding="utf-8")
    own = anchors_of_text(text)
    out = []
    for n, line in enumerate(without_fenced_code(text).split("\n"), start=1):
        out += text_reference_findings(line, where(path.relative_to(root), line=n), tree, path.parent, path, own)
    return out


def documents(root: Path = ROOT) -> list[Path]:
    """The series' markdown documents: README.md, docs/*.md, notebooks/*.md."""
    out = [root / "README.md"] if (root / "README.md").is_file() else []
    return out + sorted((root / "docs").glob("*.md")) + sorted((root / "notebooks").glob("*.md"))


# ---------------------------------------------------------------- stored outputs


def text_output_lines(cell: dict) -> int:
    """Lines of a code cell's stored text output: stream text (stdout and stderr) and the text/plain of
    display_data and execute_result."""
    streams: dict[str, str] = {}
    plain = 0
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            text = out.get("text", "")
            streams[out.get("name", "stdout")] = streams.get(out.get("name", "stdout"), "") + (
                "".join(text) if isinstance(text, list) else text)
        elif kind in ("display_data", "execute_result"):
            text = out.get("data", {}).get("text/plain", "")
            plain += len(("".join(text) if isinstance(text, list) else text).splitlines())
    return plain + sum(len(t.splitlines()) for t in streams.values())


def text_outputs(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            t = out.get("text", "")
            parts.append("".join(t) if isinstance(t, list) else t)
        elif out.get("output_type") in ("display_data", "execute_result"):
            for mime in ("text/plain", "text/markdown", "text/html"):
                t = out.get("data", {}).get(mime, "")
                parts.append("".join(t) if isinstance(t, list) else t)
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
    return "\n".join(parts)
