"""A Radicale rights plugin for the loopback calendar: Radicale's own rights, and a switch that takes
writing away while the tests want the calendar to refuse (`Radicale.fail_with(403)`).

Radicale loads it by module name (`--rights-type=tests.fakes.radicale_rights`) in its own process;
the switch is the file named by `--rights-file`, read on every request, so Radicale itself answers a
refused PUT or DELETE with its real 403 ("Access to the requested resource forbidden.").
"""

from __future__ import annotations

from pathlib import Path

from radicale import config, rights
from radicale.rights import authenticated, owner_only

READ_ONLY = "read-only"


class Rights(rights.BaseRights):
    def __init__(self, configuration: config.Configuration) -> None:
        super().__init__(configuration)
        self._switch = Path(configuration.get("rights", "file"))
        # the same rules radicale_calendar() chose before this plugin existed
        inner = authenticated if configuration.get("auth", "type") == "none" else owner_only
        self._inner = inner.Rights(configuration)

    def authorization(self, user: str, user_groups: set[str], path: str) -> str:
        granted = self._inner.authorization(user, user_groups, path)
        try:
            mode = self._switch.read_text().strip()
        except FileNotFoundError:
            mode = ""
        if mode == READ_ONLY:
            return granted.replace("w", "").replace("W", "")
        return granted
