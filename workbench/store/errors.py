"""The errors the label store raises: every one names the value and what was expected.

A message that suggests what to run next says it in the user's language: its parts are
text and `Hint`s, each a command both as Python (`store.restore(ref)`, what `str()` of the
error says) and as the `workbench` command line (`workbench restore STORE REF`, what
`for_cli` says; the CLI fills in the store folder and branch)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hint:
    """A command to run next. `cli` may hold "{store}" (the store folder, as typed) and
    "{branch}" (" --branch NAME" when the command worked on a branch other than main)."""

    python: str
    cli: str

    def __str__(self) -> str:
        return self.python


class StoreError(ValueError):
    """A store path, event or request that the label store cannot accept. Raised with one
    message, or with parts: str and `Hint`s, joined (see the module doc)."""

    def __str__(self) -> str:
        return "".join(map(str, self.args))

    @property
    def hints(self) -> list[Hint]:
        return [p for p in self.args if isinstance(p, Hint)]

    def for_cli(self, store: str, branch: str = "") -> str:
        """The message with each hint as a `workbench` command on the folder `store` (quoted
        as the shell needs it); `branch` is what follows the store, e.g. " --branch fix"."""
        return "".join(p.cli.replace("{store}", store).replace("{branch}", branch)
                       if isinstance(p, Hint) else str(p) for p in self.args)


class SchemaVersionError(StoreError):
    """The store was written by a newer workbench than this one."""


# The commands the store's messages suggest, in both languages.
COMMIT = Hint("store.commit(message)", "`workbench commit {store} -m MESSAGE{branch}`")
RESOLVE = Hint("store.resolve(item_id, label)", "`workbench resolve {store} ITEM LABEL{branch}`")
ABORT_MERGE = Hint("store.abort_merge()", "`workbench merge {store} --abort{branch}`")
CONFLICTS = Hint("store.conflicts()", "`workbench status {store}{branch}` lists them")
RESTORE = Hint("store.restore(ref)", "`workbench restore {store} REF{branch}`")


def make_branch(name: str) -> Hint:
    """Making branch `name` (a checked name: no quoting needed), from the main branch's head."""
    return Hint(f"store.branch({name!r})", f"`workbench branch {{store}} {name}`")


def merge_from(other: str) -> Hint:
    """Merging `other` ("origin/main") into the branch the command worked on."""
    return Hint(f"store.merge({other!r})", f"`workbench merge {{store}} {other}{{branch}}`")
