"""The step Dockerfiles: find one by its number, show it, and say which base it builds on.

`resolve_step` (a step of a project) and `resolve_file` (any Dockerfile) read and parse a Dockerfile
once into a `ResolvedStep`; the measurement protocol and `build_step` ask it every question about the
file (stages, bases, cache mounts) instead of reading or parsing the file again.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basecamp import config, disk, dockerparse
from basecamp.build import BuildResult, build
from basecamp.buildcache import CacheMountSpec, mount_specs
from basecamp.errors import InputError
from basecamp.lesson import show_code
from basecamp.uvlock import prepare_context

if TYPE_CHECKING:
    from basecamp.project import Project
    from basecamp.scratch import Scratch

#: Label naming the step an image was built from.
STEP_LABEL = "org.annapurna.step"


@dataclass(frozen=True)
class Stage:
    """One `FROM` of a Dockerfile: the image it starts from and its stage name, if any."""

    base: str
    name: str | None


def dockerfile(step: str) -> Path:
    """The Dockerfile of a step, by number or name: "1", "01", "01-naive" -> dockerfiles/01-naive.Dockerfile."""
    key = step.strip()
    if key.isdigit():
        key = f"{int(key):02d}-"
    found = sorted(p for p in config.DOCKERFILES_DIR.glob("*.Dockerfile") if p.name.startswith(key))
    if len(found) != 1:
        known = ", ".join(p.stem for p in sorted(config.DOCKERFILES_DIR.glob("*.Dockerfile")))
        raise InputError(f"unknown step {step!r}: known steps are {known}")
    return found[0]


def step_name(step: str) -> str:
    """The canonical step name, e.g. "01-naive"."""
    return dockerfile(step).stem


def image_tag(step: str, label: str = "latest") -> str:
    """The tag the lab gives a step's image: annapurna-lab/01-naive:<label>."""
    return f"{config.IMAGE_REPO_PREFIX}/{step_name(step)}:{label}"


def parse_stages(text: str) -> list[Stage]:
    """The `FROM` lines of a Dockerfile's text, in order."""
    return _stages_of(dockerparse.parse(text))


def _stages_of(model: dockerparse.Dockerfile) -> list[Stage]:
    return [Stage(st.base, st.name) for st in model.stages]


def stages(path: Path) -> list[Stage]:
    """The `FROM` lines of a Dockerfile, in order."""
    return parse_stages(path.read_text())


def base_of(step: str, target: str | None = None) -> str:
    """The image the built stage (`target`, else the last) starts from, stage names resolved."""
    return base_in(dockerfile(step), target)


def base_in(path: Path, target: str | None = None) -> str:
    """`base_of` for any Dockerfile file (a learner's own, a project's derived copy)."""
    return _base(dockerparse.parse(path.read_text()), path.name, target)


def _base(model: dockerparse.Dockerfile, file_name: str, target: str | None) -> str:
    """The image the stage `target` (else the last) of `model` starts from, stage names resolved."""
    stage = model.stage(target)
    if stage is None:
        raise InputError(f"{file_name} has no stage named {target!r}" if target else f"{file_name} has no FROM line")
    return model.resolved_base(stage)


@dataclass(frozen=True)
class ResolvedStep:
    """Step S of project P (or any Dockerfile) resolved once: its file, read and parsed, and how it is built.

    Made by `resolve_step` / `resolve_file`; every question about the Dockerfile is answered from
    `model`, so nothing reads or parses the file again. Frozen: `for_target` makes a copy.
    """

    #: The row's key: a step name ("05-multi-stage"), or a learner's or an extra Dockerfile's key.
    name: str
    #: The Dockerfile built: the step's own, or a project's derived copy of it.
    path: Path
    #: Its text, read once.
    text: str
    #: Its parsed model (basecamp.dockerparse), parsed once.
    model: dockerparse.Dockerfile
    #: The stage built (None: the last).
    target: str | None
    #: The image the built stage starts from, stage names resolved.
    base: str
    #: Where its images go, without a label: "annapurna-lab/05-multi-stage", "annapurna-lab/<project>-05-...".
    image_repo: str
    #: The project whose app it builds (None: not said, as for a Dockerfile resolved on its own).
    project: Project | None = None

    def tag(self, label: str = "latest") -> str:
        """The image tag for `label`: annapurna-lab/05-multi-stage:<label>."""
        return f"{self.image_repo}:{label}"

    @property
    def stages(self) -> list[Stage]:
        """The `FROM` lines, in order."""
        return _stages_of(self.model)

    def has_stage(self, name: str) -> bool:
        """Does a stage of this name (case-insensitive) exist?"""
        return self.model.stage(name) is not None

    @property
    def external_bases(self) -> list[str]:
        """The images its stages start from that are not its own stages (nor `scratch`), in order."""
        named: set[str] = set()
        out: list[str] = []
        for st in self.model.stages:
            if st.base.lower() not in named and st.base not in out and st.base.lower() != "scratch":
                out.append(st.base)
            if st.name:
                named.add(st.name.lower())
        return out

    @property
    def cache_mounts(self) -> list[CacheMountSpec]:
        """Its `RUN --mount=type=cache` mounts, in order (basecamp.buildcache)."""
        return mount_specs(self.model)

    def for_target(self, target: str | None) -> ResolvedStep:
        """The same Dockerfile built to another stage (its base found in the model; InputError for no such stage)."""
        if target == self.target:
            return self
        return dataclasses.replace(self, target=target, base=_base(self.model, self.path.name, target))


def resolve_file(path: Path, name: str | None = None, target: str | None = None, *,
                 project: Project | None = None, image_repo: str | None = None) -> ResolvedStep:
    """Read and parse any Dockerfile once (a learner's own, an extra): `name` defaults to the file's stem.

    `image_repo` defaults to the lab's name for `name` (with `project`'s name in front for another project).
    InputError when `target` names no stage, or the file has no FROM line.
    """
    path = Path(path)
    key = path.stem if name is None else name
    text = path.read_text()
    model = dockerparse.parse(text)
    if image_repo is None:
        image_repo = (f"{config.IMAGE_REPO_PREFIX}/{key}" if project is None or project.is_default
                      else f"{config.IMAGE_REPO_PREFIX}/{project.name}-{key}")
    return ResolvedStep(name=key, path=path, text=text, model=model, target=target,
                        base=_base(model, path.name, target), image_repo=image_repo, project=project)


def resolve_step(step: str, project: Project | None = None, target: str | None = None) -> ResolvedStep:
    """Step `step` ("5", "05", "05-multi-stage") of `project` (None: the repo's app), located, read and parsed once.

    Another project builds its derived copy of the step's Dockerfile (`Project.derive_dockerfile`),
    tagged annapurna-lab/<project>-<step>:<label> (`Project.image_tag`).
    """
    original = dockerfile(step)
    path = original if project is None or project.is_default else project.derive_dockerfile(original)
    return resolve_file(path, original.stem, target, project=project)


def show_dockerfile(step: str) -> None:
    """Display a step's Dockerfile, highlighted in JupyterLab and plain in a terminal."""
    show_code(dockerfile(step).read_text(), "docker")


def build_step(step: str, app: Scratch, label: str = "latest", *, no_cache: bool = False,
               target: str | None = None, display: Any = None) -> BuildResult:
    """Build a step's Dockerfile with a scratch copy of the app as context, tagged for the lab.

    `display`: "widget", "plain", "none" or a display object; default from $ANNAPURNA_PROGRESS. Every
    display but "none" shows the terminal command, then ONE line (time, steps cached and ran) with the
    full BuildKit log collapsed under it in a notebook (basecamp.display).
    A copy of another project (`scratch_copy(..., project=p)`) builds p's derived Dockerfile, tagged p's way.
    Before the first build of a process, checks the engine's free disk (basecamp.disk).
    """
    project = app.project if app.project is not None and not app.project.is_default else None
    resolved = resolve_step(step, project)  # the stage is BuildKit's to find: a wrong `target` fails the build
    prepare_context(app, resolved.path, resolved.text)  # a uv step's context needs a uv.lock
    labels = {STEP_LABEL: resolved.name}
    if project is not None:
        labels[config.PROJECT_LABEL] = project.name
    disk.ensure_disk_space()
    return build(resolved.path, app.path, resolved.tag(label), target=target, no_cache=no_cache, labels=labels,
                 display=display, model=resolved.model)


def describe_base(tag: str) -> str:
    """Say what a base image really is: the official image, or a stand-in built here."""
    from basecamp import engine  # here, not above: the docker SDK loads only when an engine is asked

    labels = engine.client().images.get(tag).labels or {}
    if labels.get(config.STANDIN_LABEL) == "true":
        return f"{tag} (stand-in built from Debian packages: no registry answered on this machine)"
    return f"{tag} (official image)"


#: The article's steps in order, with the step each one changes. 03b is the anti-pattern beside step 3.
PREVIOUS = {"02": "01", "03": "02", "03b": "03", "04": "03", "05": "04", "06": "05", "08": "06", "09": "06"}


def previous_step(step: str) -> str | None:
    """The step this one changes ("03" -> "02"), or None for the first."""
    key = step_name(step).split("-", 1)[0]
    return PREVIOUS.get(key)


def instructions(text: str) -> tuple[list[str], list[str]]:
    """A Dockerfile split into its instructions (continuation lines kept with theirs, as written)
    and its comment lines; blank lines belong to neither."""
    found: list[str] = []
    comments: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped)  # Docker drops comment lines, inside a continued instruction too
            continue
        if not stripped and not current:
            continue
        current.append(line.rstrip())
        if not stripped.endswith("\\"):
            found.append("\n".join(current))
            current = []
    if current:
        found.append("\n".join(current))
    return found, comments


def instruction_diff(old_text: str, new_text: str, old_name: str = "a", new_name: str = "b", context: int = 1,
                     whole: str = "the file itself") -> str:
    """What the new Dockerfile changes in the instructions, as a diff; comments are folded into one line.

    A changed instruction shows whole (all its continuation lines), `-` old and `+` new, with `context`
    unchanged instructions around it (inside a run of changed instructions, unchanged lines show as
    context); `⋮` stands for the unchanged ones left out. The last line says how many comment lines
    changed, when any did, and where to read them (`whole`).
    """
    old, old_comments = instructions(old_text)
    new, new_comments = instructions(new_text)
    out = [f"--- {old_name}", f"+++ {new_name}"]

    def emit(mark: str, units: list[str]) -> None:
        for unit in units:
            out.extend(f"{mark}{line}" for line in unit.splitlines())

    groups = list(difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_grouped_opcodes(context))
    for i, group in enumerate(groups):
        if i > 0 or group[0][1] > 0:
            out.append(" ⋮")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                emit(" ", old[i1:i2])
            elif tag == "replace":  # line by line inside: one changed line of a long ENV shows alone
                a = [line for unit in old[i1:i2] for line in unit.splitlines()]
                b = [line for unit in new[j1:j2] for line in unit.splitlines()]
                for op, a1, a2, b1, b2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
                    if op == "equal":
                        out.extend(f" {line}" for line in a[a1:a2])
                    else:
                        out.extend(f"-{line}" for line in a[a1:a2])
                        out.extend(f"+{line}" for line in b[b1:b2])
            else:
                emit("-", old[i1:i2])
                emit("+", new[j1:j2])
    if groups and groups[-1][-1][2] < len(old):
        out.append(" ⋮")
    if not groups:
        out.append(" (the instructions are the same)")
    removed = added = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old_comments, b=new_comments, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    if removed or added:
        out.append(f"# {removed} comment line{'s' * (removed != 1)} removed and {added} added, folded away here "
                   f"(every comment: {whole})")
    return "\n".join(out) + "\n"


def show_diff(step: str) -> None:
    """Display the instructions a step's Dockerfile changes over the previous step's; comment changes
    are folded into one line (`show_dockerfile` shows the file with every comment)."""
    prev = previous_step(step)
    if prev is None:
        raise InputError(f"step {step!r} is the first: it has no previous step to compare with")
    old, new = dockerfile(prev), dockerfile(step)
    diff = instruction_diff(old.read_text(), new.read_text(), old.name, new.name,
                            whole=f'bc.show_dockerfile("{step}")')
    show_code(diff, "diff")
