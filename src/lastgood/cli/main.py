"""The `lastgood` command: registry, deployments, rollbacks, evidence."""

from __future__ import annotations

import click

from lastgood import __version__
from lastgood.cli.app import CliContext, LastgoodGroup, Opener
from lastgood.cli.hooks import ServerRunner, no_server
from lastgood.config import load_settings

COMMANDS = {
    **{name: f"lastgood.cli.registry_cmds:{name}"
       for name in ("register", "models", "versions", "show", "events", "retire")},
    **{name: f"lastgood.cli.deploy_cmds:{name}"
       for name in ("env", "deploy", "verify", "rollback", "resume", "status", "history", "ops")},
    **{name: f"lastgood.cli.evidence_cmds:{name}" for name in ("archive", "audit")},
    **{name: f"lastgood.cli.access_cmds:{name}" for name in ("token", "key", "server")},
    **{name: f"lastgood.cli.watch_cmds:{name}" for name in ("watch", "policy")},
    "sync": "lastgood.cli.mlflow_cmds:sync",
    "demo": "lastgood.cli.demo:demo",
    "serve": "lastgood.cli.serve_cmds:serve_command",
}
"""Each command and where it lives; a module is imported only when its command runs."""


def build_cli(opener: Opener, *, server_runner: ServerRunner = no_server) -> click.Group:
    """The command tree over services opened by `opener` (the composition root's)."""

    @click.group(cls=LastgoodGroup, lazy=COMMANDS,
                 context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="lastgood")
    @click.option("--traceback", is_flag=True, help="Show the full traceback on errors.")
    @click.pass_context
    def cli(ctx: click.Context, traceback: bool) -> None:
        """lastgood puts the last verified model version back into production."""
        ctx.obj = CliContext(settings=load_settings(), opener=opener, traceback=traceback,
                             server=server_runner)

    return cli
