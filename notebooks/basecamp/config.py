"""Where things live and what the lab calls them. One place, so nothing is spelled twice."""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path

#: The checkout: the folder holding pyproject.toml, README.md and notebooks/.
REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
DOCKERFILES_DIR = REPO_ROOT / "dockerfiles"
#: The stand-in bases' recipes (basecamp.bases builds them; not lesson material, so not in the lint lesson).
STANDIN_DOCKERFILES_DIR = DOCKERFILES_DIR / "bases"

#: Git-ignored working folder: engine logs, scratch copies, results. Override with ANNAPURNA_HOME.
LAB_HOME = Path(os.environ.get("ANNAPURNA_HOME", REPO_ROOT / ".lab"))
SCRATCH_DIR = LAB_HOME / "scratch"
RESULTS_FILE = LAB_HOME / "results" / "results.jsonl"

#: Every image, container and build-cache entry the lab creates carries this label;
#: cleanup removes only objects that carry it.
LAB_LABEL = "org.annapurna.lab"
LAB_LABEL_VALUE = "1"
#: Images are tagged annapurna-lab/<step>:<tag> so `docker images` groups them.
IMAGE_REPO_PREFIX = "annapurna-lab"

#: The bases the step Dockerfiles name, as the article's readers pull them (moved to bookworm).
FULL_BASE = "python:3.11-bookworm"
SLIM_BASE = "python:3.11-slim-bookworm"
#: The runtime base of step 9: a stand-in for the distroless python3-debian12 image, always built
#: here from Debian packages (its real name carries a registry host, which the lab never writes).
DISTROLESS_BASE = "annapurna-lab/standin:distroless-python3-debian12"
#: Labels a stand-in base carries instead of being the real thing.
STANDIN_LABEL = "org.annapurna.standin"
STANDIN_FOR_LABEL = "org.annapurna.standin-for"

#: The files of the app that go into a build context (the article copies exactly these).
APP_FILES = ("pyproject.toml", "poetry.lock", "README.md", "annapurna")


@cache
def project_settings() -> dict[str, str]:
    """The `[tool.annapurna]` table of pyproject.toml (pinned Poetry and plugin versions)."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as fh:
        return dict(tomllib.load(fh)["tool"]["annapurna"])


def poetry_version() -> str:
    """The Poetry version the host and every pinned step use."""
    return project_settings()["poetry-version"]


def lab_labels(**extra: str) -> dict[str, str]:
    """The labels for an object the lab creates, plus any extra ones."""
    return {LAB_LABEL: LAB_LABEL_VALUE, **extra}


#: Label naming the project an image was built from (besides steps.STEP_LABEL).
PROJECT_LABEL = "org.annapurna.project"
#: The repo's own app's project name: results without a project are its.
DEFAULT_PROJECT = "annapurna"

#: Set on every image and container the lab itself builds or runs (not on the stand-in bases). Images
#: inherit their base's labels, so an image *you* build FROM a stand-in carries LAB_LABEL too; cleanup
#: selects on this label, which such an image never has.
MADE_LABEL = "org.annapurna.lab.made"


def made_labels(**extra: str) -> dict[str, str]:
    """lab_labels() plus MADE_LABEL: for what build(), smoke tests and probes create."""
    return {**lab_labels(), MADE_LABEL: LAB_LABEL_VALUE, **extra}
