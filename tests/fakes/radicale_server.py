"""A real Radicale CalDAV server on a loopback port, with one empty calendar collection.

    async with radicale_calendar() as url:          # http://127.0.0.1:PORT/alice/team/
        ...
    async with radicale_calendar(credentials=("alice", "s3cret")) as url:   # Basic auth required
    async with radicale_server(credentials=(u, p)) as radicale:      # radicale.url, and an outage switch:
        radicale.fail_with(403)                      # Radicale refuses every write (PUT, DELETE) with
        ...                                          # its own 403 "Access to the requested resource
        radicale.heal()                              # forbidden."; reads still answer. Writable again.

Radicale runs as a subprocess (`python -m radicale`) with its storage in a temporary folder, no
configuration file, no web interface. Without credentials anyone may do anything (auth type none,
Radicale's "authenticated" rights); with credentials only that user, who owns /<user>/ (htpasswd,
Radicale's "owner_only" rights). Those rules come through tests/fakes/radicale_rights.py, which adds
the switch: a file it reads on every request. The principal collection is made with MKCOL (unless
Radicale made it for the user logging in) and the calendar with MKCALENDAR: Radicale refuses a
MKCALENDAR whose parent does not exist (409).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.fakes.radicale_rights import READ_ONLY
from tests.support import REPO, eventually, free_port


@dataclass
class Radicale:
    """A running Radicale: `url` is the calendar collection; `fail_with(403)` / `heal()` switch writing."""

    url: str
    switch: Path  # the file tests/fakes/radicale_rights.py reads on every request
    credentials: tuple[str, str] | None = None

    def fail_with(self, status: int = 403) -> None:
        """Refuse every write with Radicale's own 403 (the account may still read the calendar)."""
        if status != 403:
            raise ValueError(f"the Radicale switch refuses writes with 403 only, not {status}")
        if self.credentials is None:  # Radicale asks an anonymous caller to log in: 401, not 403
            raise ValueError(
                "Radicale refuses a write with 403 only to a logged-in user: radicale_server(credentials=...)"
            )
        self.switch.write_text(READ_ONLY)

    def heal(self) -> None:
        self.switch.write_text("")


@contextlib.asynccontextmanager
async def radicale_calendar(
    *,
    user: str = "alice",
    calendar: str = "team",
    credentials: tuple[str, str] | None = None,
    folder: Path | None = None,
    timeout: float = 20.0,
) -> AsyncIterator[str]:
    """Start Radicale, create /<user>/<calendar>/, yield that collection's URL; stop Radicale on exit."""
    async with radicale_server(
        user=user, calendar=calendar, credentials=credentials, folder=folder, timeout=timeout
    ) as radicale:
        yield radicale.url


@contextlib.asynccontextmanager
async def radicale_server(
    *,
    user: str = "alice",
    calendar: str = "team",
    credentials: tuple[str, str] | None = None,
    folder: Path | None = None,
    timeout: float = 20.0,
) -> AsyncIterator[Radicale]:
    """Start Radicale, create /<user>/<calendar>/, yield it with its switch; stop Radicale on exit."""
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="radicale-")))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        switch = folder / "outage"
        switch.write_text("")
        args = [
            sys.executable,
            "-m",
            "radicale",
            "--config",
            "",  # no /etc/radicale/config, no ~/.config/radicale/config
            f"--storage-filesystem-folder={folder / 'collections'}",
            f"--server-hosts=127.0.0.1:{port}",
            "--web-type=none",
            "--logging-level=warning",
            "--rights-type=tests.fakes.radicale_rights",
            f"--rights-file={switch}",
        ]
        if credentials is None:
            args += ["--auth-type=none"]
            auth = None
        else:
            login, password = credentials
            htpasswd = folder / "htpasswd"
            htpasswd.write_text(f"{login}:{password}\n")
            args += [
                "--auth-type=htpasswd",
                f"--auth-htpasswd-filename={htpasswd}",
                "--auth-htpasswd-encryption=plain",
                "--auth-delay=0",
            ]
            auth = httpx.BasicAuth(login, password)
        log_path = folder / "radicale.log"
        log_file = stack.enter_context(open(log_path, "wb"))
        # the rights plugin is imported from this checkout, wherever pytest was started
        python_path = os.pathsep.join(part for part in (str(REPO), os.environ.get("PYTHONPATH", "")) if part)
        process = await asyncio.create_subprocess_exec(
            *args, stdout=log_file, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "PYTHONPATH": python_path}
        )
        try:
            async with httpx.AsyncClient(timeout=2.0, trust_env=False, auth=auth) as client:

                async def answers() -> bool:
                    if process.returncode is not None:
                        raise RuntimeError(
                            f"Radicale exited with {process.returncode}: {log_path.read_text(errors='replace')[-2000:]}"
                        )
                    try:
                        await client.request("OPTIONS", f"{base}/")
                    except httpx.TransportError:
                        return False
                    return True

                await eventually(answers, timeout=timeout)
                # 405 for MKCOL: the principal collection exists already (Radicale makes it for a user who logs in)
                for method, path, fine in (
                    ("MKCOL", f"/{user}/", (201, 405)),
                    ("MKCALENDAR", f"/{user}/{calendar}/", (201,)),
                ):
                    response = await client.request(method, f"{base}{path}")
                    if response.status_code not in fine:
                        raise RuntimeError(
                            f"Radicale answered {method} {path} with {response.status_code}: {response.text}"
                        )
            yield Radicale(url=f"{base}/{user}/{calendar}/", switch=switch, credentials=credentials)
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout=5)
                except TimeoutError:
                    process.kill()
                    await process.wait()
