"""Build secrets: never on the command line, never in an image; an ARG leaks. Unit and engine tests."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from basecamp import buildsecrets, engine
from basecamp.build import build, cli_argv
from basecamp.errors import InputError

PASSWORD = buildsecrets.DEMO_PASSWORD


def test_credentials_go_in_front_of_the_host_and_the_host_is_masked() -> None:
    url = buildsecrets.with_credentials("https://old:pw@idx.example:8443/simple/")
    assert url == f"https://lab-demo:{PASSWORD}@idx.example:8443/simple/"
    line = f"RUN |1 INDEX_URL={url} /bin/sh -c pip install"
    assert buildsecrets.mask(line, url) == f"RUN |1 INDEX_URL=https://lab-demo:{PASSWORD}@<index>/ /bin/sh -c pip install"
    assert "idx.example" not in buildsecrets.mask(line, url)


def test_secrets_are_passed_by_file_never_by_value(tmp_path: Path) -> None:
    argv = cli_argv(["docker", "build"], tmp_path / "Dockerfile", tmp_path, "t:1", tmp_path / "iid", target=None,
                    build_args={}, labels={}, no_cache=False, secret_files={"index_url": tmp_path / "secret-index_url"})
    i = argv.index("--secret")
    assert argv[i + 1] == f"id=index_url,src={tmp_path / 'secret-index_url'}"


SPY_CLI = textwrap.dedent("""
    import os, stat, sys
    args = sys.argv[1:]
    src = args[args.index("--secret") + 1].split("src=", 1)[1]
    mode = stat.S_IMODE(os.stat(src).st_mode)
    open(os.environ["SPY_OUT"], "w").write(f"{src}\\n{oct(mode)}\\n{open(src).read()}\\n" + "\\n".join(args))
    open(args[args.index("--iidfile") + 1], "w").write("sha256:" + "e" * 64)
""")


def test_a_secret_file_is_private_and_gone_after_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script, out = tmp_path / "spy.py", tmp_path / "spy.txt"
    script.write_text(SPY_CLI)
    monkeypatch.setattr(engine, "buildkit_cli",
                        lambda: engine.BuildCLI([sys.executable, str(script)], {"SPY_OUT": str(out)}, "spy"))
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    build(tmp_path / "Dockerfile", tmp_path, "annapurna-lab/secret-spy:1", secrets={"index_url": "s3cr3t-value"},
          display="none")
    src, mode, value, *argv = out.read_text().splitlines()
    assert mode == oct(0o600) and value == "s3cr3t-value"
    assert not any("s3cr3t-value" in a for a in argv), "the value never appears on the command line"
    assert not os.path.exists(src), "the secret file is removed after the build"
    assert stat.S_IMODE(os.stat(tmp_path).st_mode)  # the context itself is untouched


def test_bad_secret_ids_and_the_classic_builder_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(InputError, match="secret id 'a b'"):
        build(tmp_path / "Dockerfile", tmp_path, "annapurna-lab/x:1", secrets={"a b": "v"}, display="none")
    monkeypatch.setattr(engine, "buildkit_cli", lambda: None)
    with pytest.raises(InputError, match="secrets need BuildKit"):
        build(tmp_path / "Dockerfile", tmp_path, "annapurna-lab/x:1", secrets={"k": "v"}, display="none")


def test_the_extras_explain_every_instruction() -> None:
    for path in sorted(buildsecrets.EXTRAS_DIR.glob("*.Dockerfile")):
        lines = path.read_text().splitlines()
        assert lines[0].startswith("# Extra") and "(not a step)" in lines[0], path.name
        for i, line in enumerate(lines):
            if line and not line.startswith((" ", "#")):
                assert lines[i - 1].startswith("#"), f"{path.name}:{i + 1} needs a why-comment above it"
    secret = (buildsecrets.EXTRAS_DIR / "secret-index.Dockerfile").read_text()
    instructions = [line.split()[0] for line in secret.splitlines() if line and not line.startswith((" ", "#"))]
    assert "--mount=type=secret,id=index_url" in secret and not {"ARG", "ENV", "LABEL"} & set(instructions)


@pytest.mark.engine
def test_a_build_secret_leaves_no_trace_and_an_arg_does(docker_client: Any) -> None:
    demo = buildsecrets.secret_demo()
    assert not demo.secret.found, demo.secret
    assert demo.arg.history and demo.arg.saved_files, "the ARG's value is in the history (and the saved config)"
    assert any("/run/secrets/index_url" in h for h in demo.secret_history)
    assert not any(PASSWORD in h for h in demo.secret_history)
    assert any(PASSWORD in h and "<index>" in h for h in demo.arg_history)
    # the search itself works on the layers: a file written into a layer is found
    assert buildsecrets.find_in_image(docker_client, "annapurna-lab/extras-secret-index:demo", "inflection").saved_files
