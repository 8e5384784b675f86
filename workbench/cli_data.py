"""The pool a command's `--data` flag names: one function that both `workbench` verbs
(workbench.cli) and `workbench export` (workbench.cli_models) load it with, so neither
command module imports the other for it. The loop is imported only when it is called."""

from __future__ import annotations


def load_data(data: str, label_column: str | None = None, text_column: str | None = None):
    """The pool that `--data` (with `--label-column`, `--text-column`) names; it remembers
    where it came from, so a session opened on it records that in its store."""
    from workbench.loop import pool_source

    return pool_source.load(pool_source.from_data_flag(data, label_column, text_column))
