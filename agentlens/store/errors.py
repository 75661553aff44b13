"""Why a database cannot be used now. The CLI says the message in one line and exits 3 (cli.common)."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used now (the message says why and what to do); the CLI exits 3."""


class DatabaseMissing(StoreError):
    pass


class DatabaseBusy(StoreError):
    pass


class DatabaseUnavailable(StoreError):
    pass
