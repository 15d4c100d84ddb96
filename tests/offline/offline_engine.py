"""A machine with no network, on this machine: a network namespace whose only way out is a dummy interface,
where every packet to a non-local address is rejected and counted, with its own dockerd.

    with OfflineNamespace(state_dir) as ns:       # needs root, `ip`, `nsenter`, `iptables`, `dockerd`
        ns.run([...], env={..., "DOCKER_HOST": ns.docker_host})   # a command inside the namespace
        assert ns.rejected() == 0                  # nothing tried to leave

The namespace has `lo`, the dockerd's bridge (its containers) and DUMMY, which holds the default route:
anything addressed to another machine (the package index, its proxy, a registry, a DNS server) is routed
there and meets a REJECT rule (OUTPUT for the namespace's own processes, FORWARD and DOCKER-USER for the
engine's containers) whose packet counter `rejected()` reads. No veth, no NAT: nothing here is connected
to the host's network at all.

Setup steps register their undo as they happen (contextlib.ExitStack, as tests/remote/netns_engine.py
does): leaving the `with` block, by a failure midway or a Ctrl-C, undoes exactly what was done, newest
first; `teardown_leftovers()` undoes what a killed earlier run left (found by the fixed names).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

NETNS = "annapurna-offline"
#: The way out that leads nowhere: one end of a veth pair whose other end is in the namespace too, down
#: (no `dummy` driver in every kernel), and its address (a private /24 nothing else on this machine uses).
DUMMY = "ap-off0"
DUMMY_PEER = "ap-off1"
DUMMY_ADDR = "10.213.18.1/24"
#: The engine's bridge inside the namespace: its gateway is where the lab serves the bundle's index.
ENGINE_BIP = "10.213.19.1/24"
RULE_COMMENT = "annapurna-offline-test"
START_TIMEOUT_S = 90.0
#: Covers the host engine's socket for everything run inside, and proves it is covered (as the remote test does).
MASK = ('{ [ ! -e /var/run/docker.sock ] || mount --bind /dev/null /var/run/docker.sock; } && '
        '! docker -H unix:///var/run/docker.sock version >/dev/null 2>&1 && exec "$@"')


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 120) -> str:
    proc = subprocess.run(list(argv), capture_output=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return proc.stdout.decode(errors="replace")


def _in_ns(argv: Sequence[str]) -> list[str]:
    return ["nsenter", f"--net=/var/run/netns/{NETNS}", *argv]


def _rules() -> list[list[str]]:
    """(chain, spec) of the counting REJECT rules, for iptables inside the namespace."""
    tag = ["-m", "comment", "--comment", RULE_COMMENT]
    return [[chain, "-o", DUMMY, *tag, "-j", "REJECT"] for chain in ("OUTPUT", "FORWARD", "DOCKER-USER")]


def _pids_in_netns() -> list[int]:
    out = _run(["ip", "netns", "pids", NETNS], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def _stop_pids(pids: list[int], grace_s: float = 20.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder)
    with open("/proc/self/mounts") as fh:
        found = [t for t in (line.split()[1].encode().decode("unicode_escape") for line in fh)
                 if t == prefix or t.startswith(prefix + "/")]
    return sorted(found, key=len, reverse=True)


def teardown_leftovers(state_dir: Path) -> list[str]:
    """Undo what a killed earlier run left: processes in the namespace, mounts and data, the namespace."""
    done: list[str] = []
    if NETNS in _run(["ip", "netns", "list"], check=False).split():
        pids = _pids_in_netns()
        if pids:
            _stop_pids(pids)
            done.append(f"stopped {len(pids)} process(es) left in netns {NETNS}")
    for target in _mounts_under(state_dir):
        _run(["umount", "-l", target], check=False)
        done.append(f"unmounted {target}")
    if NETNS in _run(["ip", "netns", "list"], check=False).split():
        _run(["ip", "netns", "del", NETNS], check=False)
        done.append(f"deleted netns {NETNS}")
    if state_dir.exists():
        shutil.rmtree(state_dir, ignore_errors=True)
        done.append(f"removed {state_dir}")
    return done


class OfflineNamespace:
    """Network namespace NETNS with no way out, and a dockerd in it; see the module doc."""

    def __init__(self, state_dir: Path, log: Callable[[str], None] = print) -> None:
        self.state_dir = state_dir
        self.data_root = state_dir / "data"
        self.exec_root = state_dir / "exec"
        self.logfile = state_dir / "dockerd.log"
        self.docker_host = f"unix://{self.exec_root}/docker.sock"
        self.log = log
        self.undo = contextlib.ExitStack()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        for line in teardown_leftovers(self.state_dir):
            self.log(f"leftover from an earlier run: {line}")
        try:
            self._setup()
        except BaseException:
            self.undo.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo.close()

    def _setup(self) -> None:
        self.state_dir.mkdir(parents=True)
        self.undo.callback(lambda: shutil.rmtree(self.state_dir, ignore_errors=True))
        _run(["ip", "netns", "add", NETNS])
        self.undo.callback(lambda: _run(["ip", "netns", "del", NETNS], check=False))
        ns = ["ip", "-n", NETNS]
        _run([*ns, "link", "set", "lo", "up"])
        _run([*ns, "link", "add", DUMMY, "type", "veth", "peer", "name", DUMMY_PEER])
        _run([*ns, "addr", "add", DUMMY_ADDR, "dev", DUMMY])
        _run([*ns, "link", "set", DUMMY, "up"])
        _run([*ns, "route", "add", "default", "dev", DUMMY])
        self.undo.callback(self._unmount)
        self._start_dockerd()
        # after dockerd: it creates DOCKER-USER, and puts its own jumps at the top of FORWARD
        for chain, *spec in _rules():
            _run(_in_ns(["iptables", "-I", chain, "1", *spec]))

    def _start_dockerd(self) -> None:
        self.exec_root.mkdir(parents=True)
        self.data_root.mkdir(parents=True)
        argv = _in_ns(["dockerd", "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                       "--pidfile", str(self.state_dir / "dockerd.pid"), "--bip", ENGINE_BIP, "-H", self.docker_host])
        with self.logfile.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.undo.callback(self._stop_dockerd)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.proc.returncode}: {self.log_tail()}")
            if subprocess.run(["docker", "-H", self.docker_host, "version"], capture_output=True, timeout=10,
                              check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"dockerd did not answer in {START_TIMEOUT_S:.0f} s: {self.log_tail()}")

    def run(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
        """`argv` inside the namespace, in a mount namespace where the host engine's socket is covered."""
        full = _in_ns(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", MASK, "sh", *argv])
        return subprocess.run(full, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)

    def rejected(self) -> dict[str, int]:
        """Packets the REJECT rules counted, per chain: attempts to reach another machine."""
        counts: dict[str, int] = {}
        for chain in ("OUTPUT", "FORWARD", "DOCKER-USER"):
            for line in _run(_in_ns(["iptables", "-L", chain, "-v", "-x", "-n"])).splitlines():
                if RULE_COMMENT in line:
                    counts[chain] = counts.get(chain, 0) + int(line.split()[0])
        return counts

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _stop_dockerd(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            ids = _run(["docker", "-H", self.docker_host, "ps", "-aq"], check=False).split()
            if ids:
                _run(["docker", "-H", self.docker_host, "rm", "-f", *ids], check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        leftover = _pids_in_netns()  # containerd and shims the dockerd started: all ours
        if leftover:
            _stop_pids(leftover)

    def _unmount(self) -> None:
        for target in _mounts_under(self.state_dir):
            _run(["umount", "-l", target], check=False)
