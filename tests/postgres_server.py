"""A real PostgreSQL server for the tests that read a source database: started from Debian's ``postgresql``
package (any version's ``initdb`` and ``pg_ctl``), on a free port, with trust authentication, in a fresh data
directory that is removed afterwards.

Where the binaries are missing the tests say so and skip; CI sets DQHASH_REQUIRE_POSTGRES=1 (and installs the
package), so there a missing server fails instead. PostgreSQL refuses to run as root: under root the server
runs as the ``postgres`` user the package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dqhash.kafka.embedded_broker import free_port

INSTALL_HINT = "install Debian's postgresql package (apt-get install postgresql)"


def server_binaries() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: on the PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _unavailable(why: str) -> None:
    if os.environ.get("DQHASH_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"a PostgreSQL server is required here (DQHASH_REQUIRE_POSTGRES=1): {why}")
    pytest.skip(f"no PostgreSQL server to test against: {why}")


@contextmanager
def running_postgres() -> Iterator[str]:
    """A started server; yields its URL (``postgresql://postgres@127.0.0.1:<port>/postgres``, no password)."""
    bindir = server_binaries()
    if bindir is None:
        _unavailable(f"no initdb / pg_ctl found; {INSTALL_HINT}")
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable(f"running as root and there is no postgres user to run the server as; {INSTALL_HINT}")
    workdir = Path(tempfile.mkdtemp(prefix="dqhash-pg-"))
    if user is not None:
        os.chown(workdir, user.pw_uid, user.pw_gid)
    data, log = workdir / "data", workdir / "server.log"
    port = free_port()
    as_user = {"user": user.pw_uid, "group": user.pw_gid} if user is not None else {}
    run = dict(check=True, capture_output=True, text=True, timeout=120, cwd=workdir, **as_user)
    try:
        subprocess.run(
            [bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], **run
        )
        options = (
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
            " -c wal_level=logical -c max_replication_slots=4 -c max_wal_senders=4"  # a connector's slot (idle tables)
        )
        # -w: pg_ctl returns once the server accepts connections, or fails after -t seconds
        subprocess.run([bindir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start"], **run)
    except subprocess.CalledProcessError as exc:
        server_log = log.read_text() if log.exists() else ""
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc.stderr or exc.stdout}\n{server_log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], **{**run, "check": False})
        shutil.rmtree(workdir, ignore_errors=True)
