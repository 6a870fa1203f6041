"""The click group, its shared context, and the one place errors become exit codes."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from lastgood.cli.errors import (
    FAILURE,
    INTERRUPTED,
    error_document,
    exit_code_for,
    nearest,
    usage_document,
)
from lastgood.config import Settings
from lastgood.domain.errors import LastGoodError

if TYPE_CHECKING:  # imported by the commands that use them, not by `lastgood --help`
    from rich.console import Console

    from lastgood.services.faces import ControlPlane

@dataclass
class CliContext:
    """What every command can reach: the settings and the services (opened on first use)."""

    settings: Settings
    traceback: bool = False
    out: Console = field(default_factory=lambda: _console(stderr=False))
    err: Console = field(default_factory=lambda: _console(stderr=True))
    _services: ControlPlane | None = None

    @property
    def services(self) -> ControlPlane:
        if self._services is None:
            from lastgood.bootstrap.services import open_control_plane

            self._services = open_control_plane(self.settings)
        return self._services

    @property
    def actor(self) -> str:
        return self.settings.actor

    def emit_json(self, data: Any) -> None:
        """Plain JSON on stdout (no Rich markup), for scripts."""
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True)


def _shortened(text: str, limit: int) -> str:
    """`text` cut at a word to fit `limit` with "...", as click shortens a command's help."""
    if len(text) <= limit:
        return text
    words, kept = text.split(), ""
    for word in words:
        if len(f"{kept} {word}".strip()) + 3 > limit:
            break
        kept = f"{kept} {word}".strip()
    return f"{kept}..."


def summary_in_source(target: str) -> str | None:
    """The first paragraph of the docstring of the command at `module:function`, read from the
    module's source without importing it (None when there is no source, or no such function)."""
    module, _, function = target.partition(":")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    with open(spec.origin, encoding="utf-8") as fh:
        source = fh.read()
    found = re.search(rf'^def {re.escape(function)}\(.*?\)(?: -> [^:\n]+)?:\n[ \t]+"""(.*?)"""',
                      source, re.MULTILINE | re.DOTALL)
    if found is None:
        return None
    return inspect.cleandoc(found.group(1)).split("\n\n")[0].replace("\n", " ")


class LastgoodGroup(click.Group):
    """Runs commands so that a lastgood error is one line on stderr and an exit code.

    Commands given as `name -> "module:function"` are imported only when used, so that
    `lastgood models` does not pay for importing the prediction server; `--help` lists each
    one with the first paragraph of its docstring, read from its module's source, so the
    listing imports none of them.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        summaries = {n: summary_in_source(self.lazy[n]) for n in names if n not in self.commands}
        if any(summary is None for summary in summaries.values()):
            super().format_commands(ctx, formatter)  # no source to read: ask the commands
            return
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        rows = [(n, self.commands[n].get_short_help_str(limit) if n in self.commands
                 else _shortened(summaries[n] or "", limit))
                for n in names]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            name = click.utils.make_str(args[0]) if args else ""
            guess = nearest(name, self.list_commands(ctx)) if name else None
            if guess is None or self.get_command(ctx, name) is not None:
                raise
            raise click.UsageError(f"No such command {name!r}. Did you mean {guess!r}? "
                                   f"(lastgood {guess} --help)", ctx) from exc

    def invoke(self, ctx: click.Context) -> Any:
        wants_json = "--json" in ctx.args  # errors then go to stdout as JSON, for scripts
        try:
            return super().invoke(ctx)
        except LastGoodError as exc:
            cli = ctx.find_object(CliContext)
            if cli is not None and cli.traceback:
                raise
            if wants_json:
                _emit(error_document(exc))
            else:
                click.echo(f"error: {exc.one_line()}", err=True)
            ctx.exit(exit_code_for(exc))
        except click.ClickException as exc:
            if not wants_json:
                raise
            _emit(usage_document(exc.format_message(), exc.exit_code))
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED)
        except Exception as exc:
            cli = ctx.find_object(CliContext)
            if cli is not None and cli.traceback:
                raise
            click.echo(f"error: internal error {type(exc).__name__}: {exc} — rerun with "
                       "--traceback and report it", err=True)
            ctx.exit(FAILURE)


def _emit(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


def get(ctx: click.Context) -> CliContext:
    found = ctx.find_object(CliContext)
    assert found is not None, "the root command sets the CliContext"
    return found


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print JSON (a stable, documented shape) instead of tables.")
