"""The step Dockerfiles: find one by its number, show it, and say which base it builds on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basecamp import config
from basecamp.errors import InputError

if TYPE_CHECKING:
    from basecamp.build import BuildResult
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
    from basecamp.dockerparse import parse

    return [Stage(st.base, st.name) for st in parse(text).stages]


def stages(path: Path) -> list[Stage]:
    """The `FROM` lines of a Dockerfile, in order."""
    return parse_stages(path.read_text())


def base_of(step: str, target: str | None = None) -> str:
    """The image the built stage (`target`, else the last) starts from, stage names resolved."""
    return base_in(dockerfile(step), target)


def base_in(path: Path, target: str | None = None) -> str:
    """`base_of` for any Dockerfile file (a learner's own, a project's derived copy)."""
    names: dict[str, str] = {}
    chosen = None
    for st in stages(path):
        resolved = names.get(st.base.lower(), st.base)
        if st.name:
            names[st.name.lower()] = resolved
        chosen = resolved
        if target and st.name and st.name.lower() == target.lower():
            return resolved
    if target:
        raise InputError(f"{path.name} has no stage named {target!r}")
    if chosen is None:
        raise InputError(f"{path.name} has no FROM line")
    return chosen


def show_dockerfile(step: str) -> None:
    """Display a step's Dockerfile, highlighted in JupyterLab and plain in a terminal."""
    path = dockerfile(step)
    from basecamp.lesson import show_code

    show_code(path.read_text(), "docker")


def build_step(step: str, app: Scratch, label: str = "latest", *, no_cache: bool = False,
               target: str | None = None, display: Any = None) -> BuildResult:
    """Build a step's Dockerfile with a scratch copy of the app as context, tagged for the lab.

    `display`: "widget", "plain", "none" or a display object; default from $ANNAPURNA_PROGRESS. Every
    display but "none" shows the terminal command, then ONE line (time, steps cached and ran) with the
    full BuildKit log collapsed under it in a notebook (basecamp.display).
    A copy of another project (`scratch_copy(..., project=p)`) builds p's derived Dockerfile, tagged p's way.
    """
    from basecamp.build import build
    from basecamp.uvlock import prepare_context

    prepare_context(app, dockerfile(step))  # a uv step's context needs a uv.lock
    if app.project is not None and not app.project.is_default:
        return build(app.project.dockerfile(step), app.path, app.project.image_tag(step, label), target=target,
                     no_cache=no_cache, labels={STEP_LABEL: step_name(step), config.PROJECT_LABEL: app.project.name},
                     display=display)
    return build(dockerfile(step), app.path, image_tag(step, label), target=target, no_cache=no_cache,
                 labels={STEP_LABEL: step_name(step)}, display=display)


def describe_base(tag: str) -> str:
    """Say what a base image really is: the official image, or a stand-in built here."""
    from basecamp import engine

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
    import difflib

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
    from basecamp.lesson import show_code

    show_code(diff, "diff")
