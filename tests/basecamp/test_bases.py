"""basecamp.bases: apt sources, stand-in recipes, and the two base images themselves."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from basecamp import baserecipes, bases, config, dockerparse, lint
from basecamp.bases import DebianMirror, HostInputs
from basecamp.errors import InputError, LabError
from basecamp.index import IndexSettings, default_index_url

DEB822 = """\
Types: deb
# a comment inside the stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb deb-src
URIs: http://other.example/debian
Suites: trixie
Components:
 main
Enabled: no
"""

ONE_LINE = """\
# comment
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://old.example/debian bullseye main contrib
deb-src http://old.example/debian bullseye main
deb http://ports.example/ubuntu noble main universe  # trailing comment
"""


def test_parse_deb822() -> None:
    entries = bases.parse_deb822(DEB822)
    assert len(entries) == 3
    first, security, disabled = entries
    assert first.types == ["deb"] and first.uris == ["http://mirror.example/debian"]
    assert first.suites == ["bookworm", "bookworm-updates"] and first.components == ["main"]
    assert first.options["signed-by"] == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert security.components == ["main", "contrib"]
    assert disabled.components == ["main"] and not disabled.enabled


def test_parse_one_line() -> None:
    entries = bases.parse_one_line(ONE_LINE)
    assert [e.types for e in entries] == [["deb"], ["deb-src"], ["deb"]]
    assert entries[0].options == {"arch": "amd64", "signed-by": "/usr/share/keyrings/x.gpg"}
    assert entries[0].uris == ["http://old.example/debian"] and entries[0].suites == ["bullseye"]
    assert entries[0].components == ["main", "contrib"]
    assert entries[2].components == ["main", "universe"]


def test_apt_sources_reads_both_formats(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(ONE_LINE)
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list.d" / "extra.list").write_text("deb http://extra.example/debian sid main\n")
    (tmp_path / "sources.list.d" / "off.list.disabled").write_text("deb http://no.example/debian sid main\n")
    uris = [e.uris[0] for e in bases.apt_sources(tmp_path)]
    assert uris == [
        "http://old.example/debian", "http://old.example/debian", "http://ports.example/ubuntu",
        "http://extra.example/debian", "http://mirror.example/debian", "http://mirror.example/debian-security",
    ]  # fmt: skip


def test_debian_mirror_prefers_the_suite_itself() -> None:
    entries = bases.parse_one_line(ONE_LINE) + bases.parse_deb822(DEB822)
    assert bases.debian_mirror(entries, "bookworm") == DebianMirror("http://mirror.example/debian", "bookworm")


def test_debian_mirror_falls_back_to_another_debian_suite() -> None:
    entries = bases.parse_one_line(ONE_LINE)
    assert bases.debian_mirror(entries, "bookworm") == DebianMirror("http://old.example/debian", "bookworm")


def test_debian_mirror_none_on_ubuntu_only() -> None:
    entries = bases.parse_one_line("deb http://ports.example/ubuntu noble main\n")
    with pytest.raises(LabError, match="No Debian archive"):
        bases.debian_mirror(entries, "bookworm")


def test_parse_apt_config_dump() -> None:
    text = 'Acquire::Check-Valid-Until "false";\nAcquire::Retries "3";\nAcquire::Check-Date "false";\n'
    assert bases.parse_apt_config_dump(text) == {"Acquire::Check-Valid-Until": "false", "Acquire::Check-Date": "false"}


def test_tag_parts() -> None:
    assert bases.suite_of(config.SLIM_BASE) == bases.suite_of(config.FULL_BASE) == "bookworm"
    assert bases.python_of(config.FULL_BASE) == bases.python_of(config.SLIM_BASE) == "3.11"


def inputs(**index: object) -> HostInputs:
    settings = IndexSettings(**{"url": "https://idx.example/simple", "needs_mirror": True, "ca_bundle": None, **index})  # type: ignore[arg-type]
    return HostInputs(
        mirror=DebianMirror("http://mirror.example/debian", "bookworm"),
        index=settings,
        ca_bundle_sha256="ab" * 32,
        apt_options={"Acquire::Check-Valid-Until": "false"},
        plugin_version="0.6.5",
    )


def test_recipe_hash_is_stable_and_tracks_its_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    base = inputs()
    slim, full = bases.recipe_hash("slim", base), bases.recipe_hash("full", base)
    assert slim == bases.recipe_hash("slim", inputs()) and full == bases.recipe_hash("full", inputs())
    assert len(slim) == 64 and slim != full
    other_ca = dataclasses.replace(base, ca_bundle_sha256="cd" * 32)
    assert bases.recipe_hash("slim", other_ca) != slim and bases.recipe_hash("full", other_ca) != full
    assert bases.recipe_hash("slim", inputs(needs_mirror=False)) != slim
    assert bases.recipe_hash("slim", dataclasses.replace(base, apt_options={})) != slim
    assert bases.recipe_hash("slim", dataclasses.replace(base, plugin_version="9.9")) != slim  # a build ARG
    with pytest.raises(InputError):
        bases.recipe_hash("medium", base)


def test_recipe_hashes_include_the_dockerfiles_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed recipe file rebuilds its stand-in (and the ones built on it) at the next prepare."""
    base = inputs()
    hashes = (bases.recipe_hash("slim", base), bases.recipe_hash("full", base), bases.distroless_recipe_hash("sha256:a"))
    folder = tmp_path / "bases"
    folder.mkdir()
    monkeypatch.setattr(config, "STANDIN_DOCKERFILES_DIR", folder)
    for kind in ("slim", "full", "distroless"):
        (folder / f"{kind}.Dockerfile").write_text((config.DOCKERFILES_DIR / "bases" / f"{kind}.Dockerfile").read_text())
    assert (bases.recipe_hash("slim", base), bases.recipe_hash("full", base),
            bases.distroless_recipe_hash("sha256:a")) == hashes, "the same text, the same hashes"
    full = folder / "full.Dockerfile"
    full.write_text(full.read_text().replace("libkrb5-dev", "libkrb5-dev libfoo-dev"))
    assert bases.recipe_hash("slim", base) == hashes[0] and bases.recipe_hash("full", base) != hashes[1]
    assert "libfoo-dev" in bases.full_packages()
    slim = folder / "slim.Dockerfile"
    slim.write_text(slim.read_text().replace("rm -rf /root/.cache", "rm -rf /root/.cache /tmp/*"))
    assert bases.recipe_hash("slim", base) != hashes[0] and bases.recipe_hash("full", base) != hashes[1]
    distroless = folder / "distroless.Dockerfile"
    distroless.write_text(distroless.read_text().replace(" tzdata ", " "))
    assert bases.distroless_recipe_hash("sha256:a") != hashes[2]


def test_standin_env_refuses_credentials() -> None:
    settings = IndexSettings("https://user:s3cret@idx.example/simple", True, None)
    with pytest.raises(InputError) as err:
        bases.standin_env(settings, ca_bundle=True)
    assert "s3cret" not in str(err.value)
    assert "secret" in str(err.value)  # points at build secrets
    with pytest.raises(InputError):
        bases.slim_dockerfile(inputs(url="https://user:s3cret@idx.example/simple"))


def test_standin_env() -> None:
    env = bases.standin_env(IndexSettings("https://idx.example/simple", True, None), ca_bundle=True)
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == bases.IMAGE_CA_BUNDLE
    assert env["PIP_INDEX_URL"] == env["POETRY_PYPI_MIRROR_URL"] == "https://idx.example/simple"
    plain = bases.standin_env(IndexSettings(default_index_url(), False, None), ca_bundle=False)
    assert plain == {"LANG": "C.UTF-8"}


def test_dockerfiles() -> None:
    slim = bases.slim_dockerfile(inputs())
    assert "# syntax" not in slim and "FROM scratch" in slim and 'CMD ["python3"]' in slim
    assert 'ENV LANG="C.UTF-8" \\\n    SSL_CERT_FILE=' in slim and 'POETRY_PYPI_MIRROR_URL="https://idx.example/simple"' in slim
    assert '"poetry-plugin-pypi-mirror==$MIRROR_PLUGIN_VERSION"' in slim
    assert bases.slim_build_args(inputs()) == {"MIRROR_PLUGIN_VERSION": "0.6.5"}
    assert bases.slim_build_args(inputs(needs_mirror=False)) == {"MIRROR_PLUGIN_VERSION": ""}
    full = bases.full_dockerfile()
    assert dockerparse.parse(full).stages[0].base == "${SLIM_IMAGE}" and "# syntax" not in full
    assert "build-essential" in full and "rm -rf /var/lib/apt/lists/*" in full
    assert bases.full_packages()[:2] == ("build-essential", "python3-dev") and "libkrb5-dev" in bases.full_packages()
    assert len(bases.full_packages()) == len(set(bases.full_packages())) > 30


def test_the_slim_recipe_gets_exactly_this_machines_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = bases.slim_dockerfile(dataclasses.replace(inputs(needs_mirror=False, url=default_index_url()),
                                                      ca_bundle_sha256=None))
    assert [i.args for i in dockerparse.parse(plain).instructions if i.keyword == "ENV"] == ['LANG="C.UTF-8"']
    folder = tmp_path / "bases"
    folder.mkdir()
    monkeypatch.setattr(config, "STANDIN_DOCKERFILES_DIR", folder)
    (folder / "slim.Dockerfile").write_text("FROM scratch\nENV LANG=C\n")
    with pytest.raises(LabError, match="exactly once"):
        bases.slim_dockerfile(inputs())


def test_standin_labels() -> None:
    labels = bases.standin_labels("full", "f" * 64)
    assert labels[config.STANDIN_LABEL] == "true"
    assert labels[config.STANDIN_FOR_LABEL] == config.FULL_BASE
    assert labels[config.LAB_LABEL] == config.LAB_LABEL_VALUE
    assert labels[bases.RECIPE_LABEL] == "f" * 64
    assert config.FULL_BASE in labels[bases.DESCRIPTION_LABEL]


def test_prepare_rootfs_trims_and_installs_trust_store(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    for folder in ("usr/lib/python3.11", "etc/dpkg/dpkg.cfg.d", "etc/apt/apt.conf.d", "etc/ssl/certs",
                   "usr/local/share/ca-certificates", "var/lib/apt/lists", "var/cache/apt/archives",
                   "usr/share/doc/pkg", "usr/share/locale/de", "dev", "debootstrap"):  # fmt: skip
        (root / folder).mkdir(parents=True)
    (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").write_text("x")
    (root / "var/lib/apt/lists/some_Packages").write_text("x")
    (root / "var/cache/apt/archives/a.deb").write_text("x")
    (root / "usr/share/doc/pkg/README").write_text("x")
    (root / "usr/share/locale/locale.alias").write_text("x")
    (root / "etc/resolv.conf").write_text("nameserver 10.0.0.1\n")
    bundle = tmp_path / "host.crt"
    bundle.write_text("HOST PEM")
    host = inputs(ca_bundle=bundle)
    bases._prepare_rootfs(root, host)
    assert not (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").exists()
    assert (root / "etc/ssl/certs/ca-certificates.crt").read_text() == "HOST PEM"
    assert "Check-Valid-Until" in (root / "etc/apt/apt.conf.d/99annapurna-host").read_text()
    assert list((root / "var/lib/apt/lists").iterdir()) == [root / "var/lib/apt/lists/partial"]
    assert not (root / "var/cache/apt/archives/a.deb").exists()
    assert not (root / "usr/share/doc/pkg").exists() and not (root / "usr/share/locale/de").exists()
    assert (root / "usr/share/locale/locale.alias").exists()
    assert not (root / "etc/resolv.conf").exists() and not (root / "debootstrap").exists()


def test_this_machines_mirror_is_read_at_run_time() -> None:
    if not Path("/etc/apt").is_dir():
        pytest.skip("not a Debian-like machine")
    mirror = bases.debian_mirror(bases.apt_sources(), "bookworm")
    assert mirror.url.startswith(("http://", "https://")) and mirror.suite == "bookworm"


# --- against the real engine ---------------------------------------------------------------------


def run_in(tag: str, script: str) -> str:
    from basecamp.engine import client

    out = client().containers.run(tag, ["sh", "-c", script], remove=True, labels=config.lab_labels())
    return out.decode().strip()


@pytest.mark.engine
def test_ensure_bases_gives_both_bases() -> None:
    from basecamp.engine import client, ensure_engine

    ensure_engine()
    found = bases.ensure_bases(progress=lambda msg: print(msg))
    assert [b.tag for b in found] == [config.FULL_BASE, config.SLIM_BASE]
    assert [b.kind for b in found] == ["full", "slim"]
    dk = client()
    interpreters = set()
    for b in found:
        image = dk.images.get(b.tag)
        assert b.size_bytes == image.attrs["Size"] > 0
        if b.is_standin:
            labels = image.labels
            assert labels[config.STANDIN_LABEL] == "true" and labels[config.STANDIN_FOR_LABEL] == b.tag
            assert labels[config.LAB_LABEL] == config.LAB_LABEL_VALUE
            assert labels[bases.RECIPE_LABEL] and labels[bases.DESCRIPTION_LABEL]
            assert image.attrs["Config"]["Cmd"] == ["python3"]
        assert run_in(b.tag, "python --version").startswith("Python 3.11")
        assert "python 3.11" in run_in(b.tag, "pip --version")
        assert run_in(b.tag, "command -v poetry || echo none") == "none"
        assert run_in(b.tag, "ls /usr/lib/python3*/EXTERNALLY-MANAGED 2>/dev/null || echo none") == "none"
        interpreters.add(run_in(b.tag, 'readlink -f "$(command -v python)"'))
        if b.is_standin:
            # pip may install into the system site-packages, offline, from a wheel the image has.
            out = run_in(b.tag, "pip install --no-index --no-deps --force-reinstall /usr/share/python-wheels/setuptools-*.whl 2>&1")
            assert "Successfully installed setuptools" in out, out
            assert run_in(b.tag, "ls /var/lib/apt/lists | grep -v -x partial | wc -l") == "0"
    assert len(interpreters) == 1, interpreters
    full = found[0]
    if full.is_standin:
        assert run_in(full.tag, "gcc --version >/dev/null && git --version >/dev/null && echo ok") == "ok"
        assert run_in(full.tag, "test -f /usr/include/python3.11/Python.h && echo ok") == "ok"


@pytest.mark.engine
def test_second_call_rebuilds_nothing() -> None:
    bases.ensure_bases(progress=lambda msg: None)
    started = time.monotonic()
    again = bases.ensure_bases(progress=lambda msg: None)
    assert time.monotonic() - started < 5
    assert {b.source for b in again} <= {"present", "stand-in present"}
    described = bases.describe_bases()
    assert [(b.tag, b.source) for b in described] == [(b.tag, b.source) for b in again]


def test_a_standin_gets_only_the_index_url_never_the_hosts_pip_configuration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's pip.conf may hold tokens, extra indexes, trusted hosts: none of it is copied wholesale."""
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text("[global]\nindex-url = https://idx.example/simple\nextra-index-url = https://tok:en@private.example/\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(pip_conf))
    text = bases.slim_dockerfile(inputs())
    assert "pip.conf" not in text and "PIP_CONFIG_FILE" not in text and "private.example" not in text
    assert "/etc/pip" not in text and "COPY" not in text  # the root fs comes from debootstrap (ADD rootfs.tar)
    env_keys = set(bases.standin_env(inputs().index, ca_bundle=True))
    assert env_keys <= {"LANG", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_INDEX_URL", "POETRY_PYPI_MIRROR_URL"}
    assert "private.example" not in bases.full_dockerfile()


# --- the distroless stand-in (step 9's runtime base) -----------------------------------------------


def test_distroless_recipe_unpacks_packages_and_keeps_only_them() -> None:
    text = bases.distroless_dockerfile()
    model = dockerparse.parse(text)
    assert [(s.base, s.name) for s in model.stages] == [("${SLIM_IMAGE}", "unpack"), ("scratch", None)]
    for package in ("python3.11-minimal", "libpython3.11-stdlib", "libc6", "libssl3", "tzdata"):
        assert package in bases.distroless_packages(), package
    assert 'dpkg-deb -x "$deb" /rootfs' in text
    final = [i for i in model.stages[1].instructions if i.keyword != "FROM"]
    assert (final[0].keyword, final[0].flag("from"), final[0].args) == ("COPY", "unpack", "/rootfs/ /")
    assert "RUN" not in {i.keyword for i in final}, "the final stage has no shell to run anything with"
    assert (final[-1].keyword, final[-1].args) == ("ENTRYPOINT", '["/usr/bin/python3.11"]')
    assert "ln -s python3.11 usr/bin/python3" in text
    assert len(bases.distroless_packages()) == 23
    for shell_package in ("bash", "dash", "coreutils", "busybox", "python3-pip", "apt", "dpkg"):
        assert shell_package not in bases.distroless_packages()


def _written(text: str, target: str) -> str:
    """What the recipe's `printf '...' > <target>` writes, run by a real shell."""
    import re
    import subprocess

    (command,) = re.findall(rf"(printf '[^']*') > {re.escape(target)}", text)
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout


def test_distroless_accounts_have_no_login_shell() -> None:
    text = bases.distroless_dockerfile()
    users = [line.split(":") for line in _written(text, "etc/passwd").splitlines()]
    assert [(u[0], u[2], u[3]) for u in users] == [("root", "0", "0"), ("nonroot", "65532", "65532"),
                                                   ("nobody", "65534", "65534")]
    assert all(u[6] == "/sbin/nologin" for u in users)
    assert _written(text, "etc/group") == f"root:x:0:\nnonroot:x:{bases.NONROOT_UID}:\nnobody:x:65534:\n"
    assert f"chown {bases.NONROOT_UID}:{bases.NONROOT_UID} home/nonroot" in text


def test_distroless_recipe_hash_follows_the_slim_image() -> None:
    one = bases.distroless_recipe_hash("sha256:aaa")
    assert one == bases.distroless_recipe_hash("sha256:aaa")
    assert one != bases.distroless_recipe_hash("sha256:bbb")


def test_distroless_labels_name_the_real_image_without_a_registry() -> None:
    labels = bases.distroless_labels("d" * 64)
    assert labels[config.LAB_LABEL] == config.LAB_LABEL_VALUE
    assert labels[config.STANDIN_LABEL] == "true"
    assert labels[config.STANDIN_FOR_LABEL] == "distroless/python3-debian12"
    assert "." not in labels[config.STANDIN_FOR_LABEL].split("/", 1)[0], "no registry host in the name"
    assert labels[bases.RECIPE_LABEL] == "d" * 64
    assert "no shell" in labels[bases.DESCRIPTION_LABEL] and "65532" in labels[bases.DESCRIPTION_LABEL]
    assert config.DISTROLESS_BASE.startswith(bases.STANDIN_REPO + ":")


@pytest.mark.engine
def test_distroless_standin_runs_python_as_nonroot_without_a_shell(docker_client) -> None:
    import docker.errors

    found = bases.ensure_distroless(progress=lambda msg: None)
    assert found.tag == config.DISTROLESS_BASE and found.is_standin and 0 < found.size_bytes < 80e6
    image = docker_client.images.get(config.DISTROLESS_BASE)
    assert image.labels[config.STANDIN_FOR_LABEL] == bases.DISTROLESS_FOR
    code = "import os, ssl, sqlite3, zoneinfo; print(os.getuid(), os.path.exists('/home/nonroot'))"
    out = docker_client.containers.run(config.DISTROLESS_BASE, ["-c", code], user="nonroot", remove=True,
                                       labels=config.lab_labels(), network_disabled=True)
    assert out.decode().split() == ["65532", "True"]
    for shell in ("/bin/sh", "/bin/bash", "/usr/bin/dash"):
        with pytest.raises(docker.errors.APIError, match="no such file"):
            docker_client.containers.run(config.DISTROLESS_BASE, [], entrypoint=[shell], remove=True,
                                         labels=config.lab_labels(), network_disabled=True)
    again = bases.ensure_distroless(progress=lambda msg: None)
    assert again.source == "stand-in present"


def standin_dockerfiles() -> dict[str, str]:
    """The three stand-in recipes, rendered for a machine with a mirror, an index that needs the plugin and a CA."""
    return {
        "slim": bases.slim_dockerfile(inputs(ca_bundle=Path("/etc/ca.pem"))),
        "full": bases.full_dockerfile(),
        "distroless": bases.distroless_dockerfile(),
    }


def test_the_recipes_are_the_files_in_dockerfiles_bases() -> None:
    folder = config.DOCKERFILES_DIR / "bases"
    assert sorted(p.name for p in folder.glob("*.Dockerfile")) == ["distroless.Dockerfile", "full.Dockerfile",
                                                                   "slim.Dockerfile"]
    assert bases.full_dockerfile() == (folder / "full.Dockerfile").read_text()
    assert bases.distroless_dockerfile() == (folder / "distroless.Dockerfile").read_text()
    raw = (folder / "slim.Dockerfile").read_text().splitlines()
    rendered = bases.slim_dockerfile(inputs()).splitlines()
    assert raw[: raw.index(baserecipes.ENV_LINE)] == rendered[: raw.index(baserecipes.ENV_LINE)]
    assert raw[-12:] == rendered[-12:], "only the ENV line is substituted"


@pytest.mark.parametrize("kind", ["slim", "full", "distroless"])
def test_standin_dockerfiles_say_why_for_every_instruction(kind: str) -> None:
    text = standin_dockerfiles()[kind]
    model = dockerparse.parse(text)
    lines = text.splitlines()
    assert lines[0].startswith("# The "), "opens with what the image is"
    for ins in model.instructions:
        assert lines[ins.line - 2].startswith("#"), f"{kind}: line {ins.line} ({ins.keyword}) has no why-comment above it"


def test_standin_dockerfiles_lint_clean_with_every_ignore_justified(tmp_path: Path) -> None:
    """The files as they are, and the slim one as this machine renders it."""
    paths = sorted((config.DOCKERFILES_DIR / "bases").glob("*.Dockerfile"))
    for kind, text in standin_dockerfiles().items():
        path = tmp_path / f"{kind}.Dockerfile"
        path.write_text(text)
        paths.append(path)
        assert all(i.justified for i in lint.find_ignores(text, path.name)), kind
    assert len(paths) == 6 and lint.hadolint(paths) == []
