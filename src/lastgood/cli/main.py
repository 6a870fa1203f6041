"""The `lastgood` command: registry, deployments, rollbacks, evidence.

The commands sit on top of the composition root: each imports what it needs from
`lastgood.bootstrap` inside its body, so `lastgood --help` imports none of it.
"""

from __future__ import annotations

import click

from lastgood import __version__
from lastgood.cli.app import CliContext, LastgoodGroup
from lastgood.config import load_settings

COMMANDS = {
    **{name: f"lastgood.cli.registry_cmds:{name}"
       for name in ("register", "models", "versions", "show", "events", "retire")},
    **{name: f"lastgood.cli.deploy_cmds:{name}"
       for name in ("env", "deploy", "verify", "rollback", "resume", "status", "history", "ops")},
    **{name: f"lastgood.cli.evidence_cmds:{name}" for name in ("archive", "audit")},
    **{name: f"lastgood.cli.access_cmds:{name}" for name in ("token", "key", "server")},
    **{name: f"lastgood.cli.watch_cmds:{name}" for name in ("watch", "policy")},
    "quarantine": "lastgood.cli.quarantine_cmds:quarantine",
    "metrics": "lastgood.cli.metrics_cmds:metrics",
    "sync": "lastgood.cli.mlflow_cmds:sync",
    "demo": "lastgood.cli.demo:demo",
    "serve": "lastgood.cli.serve_cmds:serve_command",
    "wait": "lastgood.cli.wait_cmds:wait",
}
"""Each command and where it lives; a module is imported only when its command runs."""


@click.group(cls=LastgoodGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lastgood")
@click.option("--traceback", is_flag=True, help="Show the full traceback on errors.")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """lastgood puts the last verified model version back into production."""
    ctx.obj = CliContext(settings=load_settings(), traceback=traceback)


def main() -> None:
    """The `lastgood` console script."""
    cli(prog_name="lastgood")
