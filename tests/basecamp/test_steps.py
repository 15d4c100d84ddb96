import re

import pytest
from basecamp import buildcache, config, dockerparse, steps
from basecamp.errors import InputError
from basecamp.project import Project
from basecamp.projectlayout import Package

INSTRUCTION = re.compile(r"^(FROM|RUN|COPY|ADD|ENV|ARG|WORKDIR|ENTRYPOINT|CMD|EXPOSE|USER|LABEL|VOLUME)\b")
#: hadolint's pragma must sit right above its instruction; the why comment goes above it (basecamp.lint).
HADOLINT_PRAGMA = re.compile(r"^\s*#\s*hadolint\s", re.IGNORECASE)
DOCKERFILES = sorted(config.DOCKERFILES_DIR.glob("*.Dockerfile"))


def test_steps_are_found_by_number_or_name() -> None:
    assert steps.dockerfile("1") == steps.dockerfile("01") == steps.dockerfile("01-naive")
    assert steps.step_name("1") == "01-naive"
    assert steps.image_tag("1", "cold") == "annapurna-lab/01-naive:cold"


def test_unknown_step_names_the_known_ones() -> None:
    with pytest.raises(InputError, match="unknown step '99'.*01-naive"):
        steps.dockerfile("99")


def test_base_of_follows_stage_names(tmp_path, monkeypatch) -> None:
    (tmp_path / "05-x.Dockerfile").write_text(
        "FROM python:3.11-bookworm AS builder\nRUN true\nFROM python:3.11-slim-bookworm AS runtime\n"
    )
    (tmp_path / "06-y.Dockerfile").write_text("FROM python:3.11-bookworm AS base\nFROM base AS final\n")
    monkeypatch.setattr(config, "DOCKERFILES_DIR", tmp_path)
    assert steps.base_of("5") == "python:3.11-slim-bookworm"
    assert steps.base_of("6") == "python:3.11-bookworm"


def test_naive_step_builds_on_the_full_base() -> None:
    assert steps.base_of("01") == config.FULL_BASE


def test_a_step_is_resolved_once_into_one_object() -> None:
    """Name, file, text, model, base, tag: every later question is answered from it, not from the file."""
    resolved = steps.resolve_step("5")
    path = steps.dockerfile("05")
    assert (resolved.name, resolved.path, resolved.text) == ("05-multi-stage", path, path.read_text())
    assert resolved.model == dockerparse.parse(path.read_text())
    assert resolved.target is None and resolved.base == config.SLIM_BASE == steps.base_of("05")
    assert resolved.tag("cold") == steps.image_tag("5", "cold") == "annapurna-lab/05-multi-stage:cold"
    assert [st.name for st in resolved.stages] == ["builder", "runtime"] and resolved.has_stage("RUNTIME")
    assert resolved.external_bases == [config.FULL_BASE, config.SLIM_BASE]
    builder = resolved.for_target("builder")
    assert (builder.target, builder.base, builder.model) == ("builder", config.FULL_BASE, resolved.model)
    assert resolved.target is None, "frozen: for_target makes a copy"
    with pytest.raises(InputError, match="05-multi-stage.Dockerfile has no stage named 'nope'"):
        resolved.for_target("nope")
    mounts = steps.resolve_step("06")
    assert mounts.cache_mounts and mounts.cache_mounts == buildcache.cache_mount_specs(mounts.text)


def test_a_step_of_another_project_is_its_derived_copy(tmp_path) -> None:
    project = Project(name="hello", root=tmp_path, layout=(Package("hello", "hello"),), module="hello.main",
                      readme=None, command=("python", "-m", "hello.main"))
    resolved = steps.resolve_step("05", project, target="runtime")
    assert resolved.path == project.dockerfile("05") != steps.dockerfile("05")
    assert resolved.text == resolved.path.read_text() and "hello" in resolved.text
    assert resolved.tag("x") == project.image_tag("05", "x") == "annapurna-lab/hello-05-multi-stage:x"
    assert resolved.project is project and resolved.base == config.SLIM_BASE


def test_any_dockerfile_resolves_under_its_own_name(tmp_path) -> None:
    (tmp_path / "yours.Dockerfile").write_text("FROM python:3.11-bookworm AS base\nFROM base\nRUN true\n")
    resolved = steps.resolve_file(tmp_path / "yours.Dockerfile")
    assert (resolved.name, resolved.base, resolved.external_bases) == ("yours", config.FULL_BASE, [config.FULL_BASE])
    assert resolved.tag() == "annapurna-lab/yours:latest"
    (tmp_path / "empty.Dockerfile").write_text("# nothing\n")
    with pytest.raises(InputError, match="empty.Dockerfile has no FROM line"):
        steps.resolve_file(tmp_path / "empty.Dockerfile")


@pytest.mark.parametrize("path", DOCKERFILES, ids=[p.stem for p in DOCKERFILES])
def test_dockerfiles_explain_themselves(path) -> None:
    """Like astral-sh/uv-docker-example: a header saying what the step adds, a *why* per instruction."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# Step "), "open with what this step is"
    assert not any(line.startswith("# syntax=") for line in lines), "syntax lines need a registry"
    for i, line in enumerate(lines):
        if INSTRUCTION.match(line):
            j = i - 1
            while j >= 0 and HADOLINT_PRAGMA.match(lines[j]):
                j -= 1
            above = lines[j].strip() if j >= 0 else ""
            assert above.startswith("#"), f"{path.name}:{i + 1} `{line}` has no comment saying why"


@pytest.mark.parametrize("path", DOCKERFILES, ids=[p.stem for p in DOCKERFILES])
def test_pinned_poetry_is_the_labs_poetry(path) -> None:
    pins = re.findall(r"poetry==([0-9][^\s\"']*)", path.read_text())
    pins += re.findall(r"POETRY_VERSION=([0-9][^\s\"']*)", path.read_text())
    assert all(p == config.poetry_version() for p in pins), f"{path.name} pins {pins}, the lab pins {config.poetry_version()}"


def test_each_step_diffs_against_the_one_it_changes() -> None:
    assert steps.previous_step("01") is None
    assert steps.previous_step("02") == "01"
    assert steps.previous_step("03b") == "03"
    assert steps.previous_step("04") == "03", "step 4 builds on step 3, not on the anti-pattern"
    for key in steps.PREVIOUS:
        steps.dockerfile(key)  # every step in the chain has its Dockerfile
    with pytest.raises(InputError, match="first"):
        steps.show_diff("01")


def _final_user(text: str) -> str | None:
    """The USER in effect at the end of the last stage (None: root, Docker's default)."""
    last_stage = re.split(r"(?im)^FROM\s", text)[-1]
    users = re.findall(r"(?im)^USER\s+(\S+)", last_stage)
    return users[-1] if users else None


SHIPPED = [p for p in DOCKERFILES if re.match(r"\d+", p.name) and int(re.match(r"\d+", p.name)[0]) >= 5]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_images_run_as_a_non_root_user(path) -> None:
    """From step 5 on the runtime is what ships: its final stage must not run as root."""
    user = _final_user(path.read_text())
    assert user is not None, f"{path.name}: the final stage needs a USER (it runs as root)"
    assert user.split(":")[0] not in {"0", "root"}, f"{path.name}: USER {user} is root"


def test_the_non_root_check_can_fail() -> None:
    assert _final_user("FROM a AS b\nUSER 10001\nFROM c\nRUN x\n") is None
    assert _final_user("FROM c\nUSER 10001:10001\n") == "10001:10001"
    assert SHIPPED, "steps 05 and later exist"


@pytest.mark.engine
def test_the_step_5_image_runs_as_uid_10001(docker_client) -> None:
    from basecamp.probe import run_in_image
    from basecamp.scratch import scratch_copy

    result = steps.build_step("05", scratch_copy("nonroot-test"), "nonroot-test", target="runtime", display="none")
    try:
        # by id: another kernel may re-tag the step's images meanwhile
        assert run_in_image(result.image_id, ["id", "-u"]).output.strip() == "10001"
        assert docker_client.images.get(result.image_id).attrs["Config"]["User"] == "10001:10001"
    finally:
        docker_client.images.remove(result.tag, force=True)


OLD_DOCKERFILE = """# Step A — a header the next step rewrites.
# It explains things.
FROM python:3.11-bookworm

# Pinned Poetry.
RUN pip install poetry==2.5.1
ENV A=1 \\
    B=2
# Copy the app.
COPY . .
RUN poetry install
ENTRYPOINT ["python"]
"""


def test_a_comment_only_change_folds_into_one_line() -> None:
    new = OLD_DOCKERFILE.replace("# It explains things.", "# It explains other things.\n# At length.")
    diff = steps.instruction_diff(OLD_DOCKERFILE, new, "a.Dockerfile", "b.Dockerfile", whole="show it")
    lines = diff.splitlines()
    assert lines[:2] == ["--- a.Dockerfile", "+++ b.Dockerfile"]
    assert not [line for line in lines[2:] if line[:1] in "+-"], diff
    assert lines[-1] == "# 1 comment line removed and 2 added, folded away here (every comment: show it)"
    assert "(the instructions are the same)" in diff


def test_the_diff_shows_changed_instructions_whole_and_no_comment() -> None:
    new = (OLD_DOCKERFILE.replace("# Copy the app.\n", "")
           .replace("ENV A=1 \\\n", "ENV A=1 \\\n    C=3 \\\n")
           .replace("RUN poetry install", "# Without dev.\nRUN poetry install --without dev"))
    diff = steps.instruction_diff(OLD_DOCKERFILE, new)
    body = diff.splitlines()[2:]
    assert "-RUN poetry install" in body and "+RUN poetry install --without dev" in body
    # one line added inside a continued ENV: the rest of the ENV shows as context, not as removed
    at = body.index("+    C=3 \\")
    assert body[at - 1:at + 2] == [" ENV A=1 \\", "+    C=3 \\", "     B=2"], diff
    assert not [line for line in body if line[1:].lstrip().startswith("#") and line[:1] in " +-"], diff
    assert body[-1] == "# 1 comment line removed and 1 added, folded away here (every comment: the file itself)"
    # unchanged instructions far from a change are left out, one mark per gap
    assert body[0] == " ⋮" and " FROM python:3.11-bookworm" not in body


def test_the_series_diffs_fold_their_comments() -> None:
    for step in steps.PREVIOUS:
        old, new = steps.dockerfile(steps.previous_step(step)), steps.dockerfile(step)
        diff = steps.instruction_diff(old.read_text(), new.read_text())
        changed = [line for line in diff.splitlines()[2:] if line[:1] in "+-"]
        assert changed, f"{step}: no instruction changed?"
        assert not [line for line in changed if line[1:].lstrip().startswith("#")], f"{step}: {changed}"
