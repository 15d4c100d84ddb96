"""The step Dockerfiles: find one by its number, show it, and say which base it builds on."""

from __future__ import annotations

import re
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

_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", re.IGNORECASE | re.MULTILINE)


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
    return [Stage(m.group(1), m.group(2)) for m in _FROM.finditer(text)]


def stages(path: Path) -> list[Stage]:
    """The `FROM` lines of a Dockerfile, in order."""
    return parse_stages(path.read_text())


def base_of(step: str, target: str | None = None) -> str:
    """The image the built stage (`target`, else the last) starts from, stage names resolved."""
    path = dockerfile(step)
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
    try:
        from IPython.display import Code, display

        display(Code(path.read_text(), language="docker"))
    except ImportError:
        print(path.read_text())


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
        from basecamp.project import PROJECT_LABEL

        return build(app.project.dockerfile(step), app.path, app.project.image_tag(step, label), target=target,
                     no_cache=no_cache, labels={STEP_LABEL: step_name(step), PROJECT_LABEL: app.project.name},
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


def show_diff(step: str) -> None:
    """Display what a step's Dockerfile changes over the previous step's, as a unified diff."""
    import difflib

    prev = previous_step(step)
    if prev is None:
        raise InputError(f"step {step!r} is the first: it has no previous step to compare with")
    old, new = dockerfile(prev), dockerfile(step)
    diff = "".join(difflib.unified_diff(
        old.read_text().splitlines(keepends=True), new.read_text().splitlines(keepends=True),
        fromfile=old.name, tofile=new.name, n=1,
    ))
    try:
        from IPython.display import Code, display

        display(Code(diff, language="diff"))
    except ImportError:
        print(diff)
