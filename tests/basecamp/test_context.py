import re

import pytest
from basecamp import config, context
from basecamp.build import BuildResult
from basecamp.errors import InputError
from basecamp.scratch import scratch_copy

INSTRUCTION = re.compile(r"^(FROM|RUN|COPY|ADD|ENV|ARG|WORKDIR|ENTRYPOINT|CMD)\b")
EXTRAS = sorted((config.DOCKERFILES_DIR / "extras").glob("*.Dockerfile"))


def test_dockerignore_patterns_are_read_clean(tmp_path) -> None:
    f = tmp_path / ".dockerignore"
    f.write_text("# comment\n\n/.git\nnotebooks/\n!keep.md\n")
    assert context.read_dockerignore(f) == [".git", "notebooks", "!keep.md"]


@pytest.mark.parametrize(("path", "ignored"), [
    ("annapurna/main.py", False), ("README.md", False), ("pyproject.toml", False),
    (".git/HEAD", True), (".venv/bin/python", True), ("notebooks/08.ipynb", True),
    ("annapurna/__pycache__/main.cpython-311.pyc", True), ("deep/x.ipynb", True), ("labx", False),
])
def test_the_checkouts_dockerignore_keeps_only_the_app(path: str, ignored: bool) -> None:
    patterns = context.read_dockerignore(config.REPO_ROOT / ".dockerignore")
    assert context.is_ignored(path, patterns) is ignored


def test_an_exception_lets_a_file_back_in() -> None:
    assert context.is_ignored("docs/a.md", ["docs"])
    assert not context.is_ignored("docs/a.md", ["docs", "!docs/a.md"])


@pytest.mark.parametrize(("path", "pattern", "ignored"), [
    ("x/y/z/b.txt", "x/**/b.txt", True),  # `**` in the middle: any number of folders
    ("x/b.txt", "x/**/b.txt", True),  # ... zero of them too
    ("x/y/c.txt", "x/**/b.txt", False),
    ("a/b/c", "a/*", True),  # a matched folder excludes what is under it
    ("ab/c", "a?/c", True),
    ("a/b/c", "*/c", False),  # `*` stays inside one path segment
])
def test_patterns_match_as_docker_reads_them(path: str, pattern: str, ignored: bool) -> None:
    assert context.is_ignored(path, [pattern]) is ignored


def test_context_size_counts_what_is_not_ignored(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "big").write_bytes(b"x" * 1000)
    (tmp_path / "keep").write_bytes(b"y" * 10)
    assert context.context_size(tmp_path).bytes == 1010
    small = context.context_size(tmp_path, ["a"])
    assert (small.files, small.bytes, small.top) == (1, 10, [("keep", 10)])
    with pytest.raises(InputError, match="not a folder"):
        context.context_size(tmp_path / "missing")


def test_transferred_bytes_reads_buildkits_largest_context_line(tmp_path) -> None:
    log = "#1 transferring dockerfile: 33B done\n#2 transferring context: 34B done\n#5 transferring context: 3.00MB 0.1s done\n"
    result = BuildResult("t", "", tmp_path, tmp_path, "b", 1.0, [], log, "now")
    assert context.transferred_bytes(result) == 3_000_000
    assert context.transferred_bytes(BuildResult("t", "", tmp_path, tmp_path, "b", 1.0, [], "", "now")) is None


def test_clutter_and_dockerignore_edit_only_the_scratch_copy() -> None:
    app = scratch_copy("ctx-test")
    assert (app.path / ".dockerignore").is_file(), "a scratch copy carries the checkout's .dockerignore"
    context.use_dockerignore(app, False)
    assert not (app.path / ".dockerignore").exists()
    context.clutter(app)
    before = (app.path / "notebooks/explore.ipynb").read_text()
    context.edit_notebook(app, "x")
    assert (app.path / "notebooks/explore.ipynb").read_text() != before
    assert not (config.REPO_ROOT / "notebooks/explore.ipynb").exists()


@pytest.mark.parametrize("path", EXTRAS, ids=[p.stem for p in EXTRAS])
def test_extra_dockerfiles_explain_every_instruction(path) -> None:
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# Extra ")
    for i, line in enumerate(lines):
        if INSTRUCTION.match(line):
            assert lines[i - 1].startswith("#"), f"{path.name}:{i + 1} has no why-comment above it"
