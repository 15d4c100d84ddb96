"""The workshop bundle (basecamp/bundle.py), engine-free: names, the simple index, locks, the manifest,
unpacking, image configs, the host check, the index server."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import tarfile
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urljoin

import pytest
from basecamp import bundle, bundlemake, config
from basecamp.errors import InputError, LabError


def _wheel(folder: Path, name: str, version: str = "0.1") -> Path:
    """A minimal pure-Python wheel (what pip installs: a module, METADATA, WHEEL, RECORD)."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    module = name.replace("-", "_").lower()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{module}.py", "HELLO = 'from the bundle'\n")
        zf.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}.dist-info/RECORD", "")
    return path


@pytest.mark.parametrize(("name", "expected"), [
    ("Typing_Extensions", "typing-extensions"), ("zope.interface", "zope-interface"),
    ("ruamel.yaml.clib", "ruamel-yaml-clib"), ("a__-._b", "a-b"), ("Jinja2", "jinja2"),
])
def test_names_are_normalised_as_pep_503_says(name: str, expected: str) -> None:
    assert bundle.normalize(name) == expected


def test_project_of_wheel_and_sdist_file_names() -> None:
    assert bundle.project_of("ruamel.yaml.clib-0.2.15-cp311-cp311-manylinux2014_x86_64.whl") == "ruamel-yaml-clib"
    assert bundle.project_of("Typing_Extensions-4.16.0-py3-none-any.whl") == "typing-extensions"
    assert bundle.project_of("zope.interface-7.0.tar.gz") == "zope-interface"
    with pytest.raises(InputError):
        bundle.project_of("README.md")


def test_simple_index_layout(tmp_path: Path) -> None:
    files = tmp_path / "in"
    files.mkdir()
    wheels = [_wheel(files, "Typing_Extensions", "4.0"), _wheel(files, "ruamel.yaml.clib", "0.2"), _wheel(files, "ruamel.yaml.clib", "0.3")]
    projects = bundle.write_simple_index(wheels, tmp_path / "index")
    assert sorted(projects) == ["ruamel-yaml-clib", "typing-extensions"]
    root = (tmp_path / "index" / "simple" / "index.html").read_text()
    assert re.findall(r'href="([^"]+)"', root) == ["ruamel-yaml-clib/", "typing-extensions/"]
    page = (tmp_path / "index" / "simple" / "ruamel-yaml-clib" / "index.html").read_text()
    links = re.findall(r'href="([^"#]+)#sha256=([0-9a-f]{64})"', page)
    assert [Path(h).name for h, _ in links] == ["ruamel.yaml.clib-0.2-py3-none-any.whl", "ruamel.yaml.clib-0.3-py3-none-any.whl"]
    for href, digest in links:
        served = (tmp_path / "index" / "simple" / "ruamel-yaml-clib" / href).resolve()
        assert served.is_file() and hashlib.sha256(served.read_bytes()).hexdigest() == digest


LOCK = '''
[[package]]
name = "Typing_Extensions"
version = "4.16.0"
groups = ["main"]

[[package]]
name = "pywin32"
version = "312"
groups = ["lab"]
markers = "sys_platform == \\"win32\\""

[[package]]
name = "appnope"
version = "0.1.4"
groups = ["lab"]
markers = {lab = "platform_system == \\"Darwin\\"", dev = "sys_platform == \\"linux\\""}

[[package]]
name = "soupsieve"
version = "2.10"
markers = "python_version < \\"3.14\\""

[[package]]
name = "soupsieve"
version = "4.1.2"
markers = "python_version >= \\"3.14\\""

[[package]]
name = "the-app"
version = "0.1.0"
source = { editable = "." }
'''


def test_lock_pins_all_groups_and_only_what_the_containers_install() -> None:
    env = bundlemake.container_environment("3.11", "x86_64")
    assert bundlemake.lock_pins(LOCK, env) == [("typing-extensions", "4.16.0"), ("appnope", "0.1.4"), ("soupsieve", "2.10")]
    assert bundlemake.lock_pins(LOCK) == [("typing-extensions", "4.16.0"), ("pywin32", "312"), ("appnope", "0.1.4"),
                                      ("soupsieve", "2.10"), ("soupsieve", "4.1.2")]


def test_the_app_lock_and_dockerfiles_give_the_step_builds_packages() -> None:
    pins = bundlemake.container_packages("inflection (==0.5.1)", bundlemake.container_environment("3.11", "x86_64"))
    assert pins["poetry"] == config.poetry_version()
    assert pins["poetry-plugin-pypi-mirror"] == config.project_settings()["poetry-mirror-plugin"]
    assert pins["inflection"] == "0.5.1"
    assert re.fullmatch(r"\d+\.\d+\.\d+", pins["uv"])  # step 8's pin
    assert "fastapi" in pins and "pywin32" not in pins
    assert bundlemake.dockerfile_pins(["RUN pip install --no-cache-dir uv==0.1.2 \\\n    a_b==3\n# pip install c==1"]) == {"uv": "0.1.2", "a-b": "3"}
    assert bundlemake.spec_pin("inflection (==0.5.1)") == ("inflection", "0.5.1")


def test_manylinux_platforms_cover_older_glibc_and_legacy_aliases() -> None:
    tags = bundlemake.manylinux_platforms("x86_64", (2, 36))
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in tags
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(tags)
    assert not any(t.startswith("manylinux_2_37") for t in tags)


def _fake_bundle(tmp_path: Path, tamper: bool = False) -> Path:
    stage = tmp_path / "stage"
    (stage / "wheels" / "lab").mkdir(parents=True)
    _wheel(stage / "wheels" / "lab", "probe")
    bundle.write_simple_index([_wheel(tmp_path, "Other_Pkg")], stage / "index")
    manifest = bundle.manifest_for(stage, lab_commit="abc", created="now", host_platform="h", container_platform="c", images=[])
    (stage / bundle.MANIFEST).write_text(manifest.to_json())
    out = tmp_path / "b.tar"
    with tarfile.open(out, "w") as tar:
        tar.add(stage / bundle.MANIFEST, bundle.MANIFEST)
        for entry in manifest.entries:
            if tamper and entry.path.endswith(".whl") and "files" in entry.path:
                data = b"not the wheel the manifest hashed"
                info = tarfile.TarInfo(entry.path)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.add(stage / entry.path, entry.path)
    return out


def test_manifest_lists_every_file_with_size_and_sha256_and_roundtrips(tmp_path: Path) -> None:
    out = _fake_bundle(tmp_path)
    manifest = bundle.unpack(out, tmp_path / "unpacked", say=lambda _: None)
    assert manifest.lab_commit == "abc"
    paths = {e.path for e in manifest.entries}
    assert "index/simple/other-pkg/index.html" in paths and "wheels/lab/probe-0.1-py3-none-any.whl" in paths
    for e in manifest.entries:
        data = (tmp_path / "unpacked" / e.path).read_bytes()
        assert len(data) == e.size and hashlib.sha256(data).hexdigest() == e.sha256
    assert bundle.Manifest.from_json(manifest.to_json()) == manifest
    with pytest.raises(InputError, match="format"):
        bundle.Manifest.from_json(json.dumps({**json.loads(manifest.to_json()), "format": 99}))


def test_unpack_refuses_a_member_that_does_not_match_the_manifest(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not match its manifest"):
        bundle.unpack(_fake_bundle(tmp_path, tamper=True), tmp_path / "unpacked", say=lambda _: None)


def test_the_host_check_fails_without_naming_the_host() -> None:
    bundle.assert_no_index_host([("a", b"nothing here")], "index.example.invalid")
    with pytest.raises(LabError) as caught:
        bundle.assert_no_index_host([("a", b"x"), ("manifest.json", b"https://INDEX.example.invalid/simple")], "index.example.invalid")
    assert "manifest.json" in str(caught.value) and "example" not in str(caught.value)


def test_rewrite_config_scrubs_the_index_and_points_at_the_bundle() -> None:
    url = "https://index.example.invalid/simple"
    cfg = {"config": {"Env": ["PATH=/bin", f"POETRY_PYPI_MIRROR_URL={url}", "PIP_INDEX_URL=old"], "Labels": {"a": "1"}},
           "container_config": {"Env": [f"X={url}"], "Cmd": ["/bin/sh", "-c", f"#(nop) ENV X={url}"]},
           "history": [{"created_by": f"/bin/sh -c #(nop)  ENV POETRY_PYPI_MIRROR_URL={url} LANG=C"}]}
    out = bundle.rewrite_config(cfg, url, bundle.index_env("172.17.0.1", 8000), {bundle.BUNDLE_LABEL: "id"})
    assert "example" not in json.dumps(out)
    env = out["config"]["Env"]
    assert "PATH=/bin" in env and "PIP_INDEX_URL=old" not in env
    assert "PIP_INDEX_URL=http://172.17.0.1:8000/simple" in env and "PIP_TRUSTED_HOST=172.17.0.1:8000" in env
    assert "POETRY_PYPI_MIRROR_URL=http://172.17.0.1:8000/simple" in env
    assert out["config"]["Labels"] == {"a": "1", bundle.BUNDLE_LABEL: "id"}


def test_in_use_and_from_bundle_follow_the_state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "LAB_HOME", tmp_path)
    assert bundle.in_use() is None and bundle.notice() == ""
    assert not bundle.from_bundle({bundle.BUNDLE_LABEL: "abc"})
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / bundle.STATE_FILE).write_text(json.dumps({"gateway": "10.9.8.7", "port": 1234, "bundle_sha256": "abc"}))
    state = bundle.in_use()
    assert state is not None and state.url == "http://10.9.8.7:1234/simple"
    assert bundle.from_bundle({bundle.BUNDLE_LABEL: "abc"})
    assert not bundle.from_bundle({bundle.BUNDLE_LABEL: "other"}) and not bundle.from_bundle({})
    assert "10.9.8.7:1234" in bundle.notice()


def test_the_index_server_serves_pages_and_files_and_logs_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*_: object) -> str:  # http.server's reverse lookup of its address: a DNS packet, offline
        raise AssertionError("the index server asked the name server")

    monkeypatch.setattr(socket, "getfqdn", no_dns)
    bundle.write_simple_index([_wheel(tmp_path, "Some.Pkg")], tmp_path / "index")
    port = bundle.free_port("127.0.0.1")
    with bundle.IndexServer(tmp_path / "index", "127.0.0.1", port) as server:
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/simple/some-pkg/", timeout=10).read().decode()
        href = re.search(r'href="([^"#]+)', page)
        assert href is not None
        wheel = urllib.request.urlopen(urljoin(f"http://127.0.0.1:{port}/simple/some-pkg/", href.group(1)), timeout=10).read()
    assert wheel == (tmp_path / "index" / "files" / "Some.Pkg-0.1-py3-none-any.whl").read_bytes()
    assert any("GET /simple/some-pkg/ " in line for line in server.access_log)
    assert any("GET /files/Some.Pkg-0.1-py3-none-any.whl" in line for line in server.access_log)
