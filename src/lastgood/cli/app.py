"""The click group, its shared context, and the one place errors become exit codes."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console

from lastgood.cli.errors import exit_code_for
from lastgood.cli.hooks import ServerRunner, no_server
from lastgood.config import Settings
from lastgood.domain.errors import LastGoodError
from lastgood.services.faces import ControlPlane

Opener = Callable[[Settings], ControlPlane]
"""The local services, or a remote control plane when LASTGOOD_URL is set."""


@dataclass
class CliContext:
    """What every command can reach: settings and the services, opened on first use."""

    settings: Settings
    opener: Opener
    traceback: bool = False
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))
    server: ServerRunner = no_server
    _services: ControlPlane | None = None

    @property
    def services(self) -> ControlPlane:
        if self._services is None:
            self._services = self.opener(self.settings)
        return self._services

    @property
    def actor(self) -> str:
        return self.settings.actor

    def emit_json(self, data: Any) -> None:
        """Plain JSON on stdout (no Rich markup), for scripts."""
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


class LastgoodGroup(click.Group):
    """Runs commands so that a lastgood error is one line on stderr and an exit code.

    Commands given as `name -> "module:attribute"` are imported only when used, so that
    `lastgood models` does not pay for importing the prediction server.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

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

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LastGoodError as exc:
            cli = ctx.find_object(CliContext)
            if cli is not None and cli.traceback:
                raise
            click.echo(f"error: {exc.one_line()}", err=True)
            ctx.exit(exit_code_for(exc))
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            cli = ctx.find_object(CliContext)
            if cli is not None and cli.traceback:
                raise
            click.echo(f"error: internal error {type(exc).__name__}: {exc} — rerun with "
                       "--traceback and report it", err=True)
            ctx.exit(1)


def get(ctx: click.Context) -> CliContext:
    found = ctx.find_object(CliContext)
    assert found is not None, "the root command sets the CliContext"
    return found


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print JSON (a stable, documented shape) instead of tables.")
