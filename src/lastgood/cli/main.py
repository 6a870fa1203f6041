"""The `lastgood` command: registry, deployments, rollbacks, evidence."""

from __future__ import annotations

import click

from lastgood import __version__
from lastgood.cli.access_cmds import key, server, token
from lastgood.cli.app import CliContext, LastgoodGroup, Opener
from lastgood.cli.demo import demo
from lastgood.cli.deploy_cmds import (
    deploy,
    env,
    history,
    ops,
    resume,
    rollback,
    status,
    verify,
)
from lastgood.cli.evidence_cmds import archive, audit
from lastgood.cli.hooks import ServerRunner, no_server
from lastgood.cli.registry_cmds import events, models, register, retire, show, versions
from lastgood.cli.serve_cmds import serve_command
from lastgood.cli.watch_cmds import policy, watch
from lastgood.config import load_settings


def build_cli(opener: Opener, *, server_runner: ServerRunner = no_server) -> click.Group:
    """The command tree over services opened by `opener` (the composition root's)."""

    @click.group(cls=LastgoodGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="lastgood")
    @click.option("--traceback", is_flag=True, help="Show the full traceback on errors.")
    @click.pass_context
    def cli(ctx: click.Context, traceback: bool) -> None:
        """lastgood puts the last verified model version back into production."""
        ctx.obj = CliContext(settings=load_settings(), opener=opener, traceback=traceback,
                             server=server_runner)

    for command in (register, models, versions, show, events, retire, env, deploy, verify,
                    rollback, resume, status, history, archive, audit, demo, ops, token, key,
                    server, watch, policy, serve_command):
        cli.add_command(command)
    return cli
