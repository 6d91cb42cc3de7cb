"""A real OpenSSH server on 127.0.0.1 for tests: its own host key, client key and config in a tmp dir."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class LocalSshd:
    """How to reach the test's sshd."""

    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    authorized_keys: Path
    log: Path


def require_ssh_tools() -> None:
    """Skip when sshd/ssh/rsync are missing; fail instead under PGOLF_REQUIRE_SHARED_DATA=1 (CI)."""
    missing = [name for name, ok in (("sshd", SSHD.is_file()), ("ssh", shutil.which("ssh")),
                                     ("rsync", shutil.which("rsync"))) if not ok]
    if missing:
        message = (f"{', '.join(missing)} not installed (Debian: apt-get install openssh-server "
                   "openssh-client rsync; .ci/run installs them)")
        if os.environ.get("PGOLF_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@contextmanager
def running_sshd(root: Path, *, authorize_client: bool = True) -> Iterator[LocalSshd]:
    """Start sshd on a free port; it accepts the fresh client key only when authorized (then or later)."""
    require_ssh_tools()
    root.mkdir(parents=True, exist_ok=True)
    _keygen(root / "host_key")
    _keygen(root / "client_key")
    (root / "authorized_keys").write_text(
        (root / "client_key.pub").read_text() if authorize_client else "")
    config = root / "sshd_config"
    config.write_text("\n".join([
        f"HostKey {root / 'host_key'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        "StrictModes no", "PermitRootLogin yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "ListenAddress 127.0.0.1",
        f"PidFile {root / 'sshd.pid'}", "MaxStartups 50", "MaxSessions 50", "",
    ]))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # the privilege-separation directory sshd insists on
    port = _free_port()
    log = root / "sshd.log"
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config), "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))  # noqa: SIM115
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"sshd did not start: {log.read_text()}")
                time.sleep(0.05)
        yield LocalSshd("127.0.0.1", port, getpass.getuser(), root / "client_key",
                        root / "known_hosts", root / "authorized_keys", log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
