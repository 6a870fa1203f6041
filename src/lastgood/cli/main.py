"""The `lastgood` command: registry, deployments, rollbacks, evidence."""

from __future__ import annotations

import click

from lastgood import __version__
from lastgood.cli.app import CliContext, LastgoodGroup
from lastgood.cli.hooks import World
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

SUMMARIES = {
    "archive": "Forensic bundles of failed deployments.",
    "audit": "The hash-chained audit trail.",
    "demo": "Train, register, deploy, verify, degrade and roll back — the whole loop in one go.",
    "deploy": "Make ENV serve version REF of NAME, after the preflight checks pass.",
    "env": "Environments and their settings (feature schema, checks, switch mode).",
    "events": "The audit trail: every mutation and refusal, oldest first.",
    "history": "Which version was live when, who deployed it, why, and how it ended.",
    "metrics": "The metric history of NAME in ENV: requests, errors, latency, accuracy per "
               "version.",
    "key": "ed25519 signing keys: the private half stays here, the registry records the public.",
    "models": "List every model.",
    "ops": "Deploys and rollbacks, newest first, with their phase.",
    "policy": "Health policies: signals, tolerated regression, bake window, mode.",
    "quarantine": "Quarantined versions: list them, or lift a quarantine that was not the "
                  "version's fault.",
    "register": "Register PATH (a model file, an MLflow model folder, or an MLflow URI: "
                "models:/M/3, models:/M@ALIAS, runs:/RUN_ID/PATH) as the next version of NAME.",
    "resume": "Finish deploys and rollbacks that a crash interrupted.",
    "retire": "Retire a version: it stays in history but is never deployed or rolled back to.",
    "rollback": "Put back the most recent verified version of NAME in ENV.",
    "serve": "Serve ENV: hot switches to warm standbys, replicas that follow the registry.",
    "server": "Run the control plane: REST API, OpenAPI document and dashboard (until Ctrl-C).",
    "show": "Show one version (REF is a number or a tag).",
    "sync": "Import versions from an outside registry.",
    "status": "Desired against actual: what ENV should serve and what each replica serves.",
    "token": "API tokens for the control plane (stored hashed; the secret is shown once).",
    "verify": "Mark the live deployment verified, with its measured baseline.",
    "versions": "List the versions of NAME, newest first.",
    "wait": "Wait for the watch's verdict on the live deployment of NAME in ENV (for CI).",
    "watch": "Judge every live deployment of ENV continuously: verify, roll back, or page a "
             "human.",
}
"""`lastgood --help` lists these instead of importing every command module (a test keeps them
equal to the commands' docstrings)."""


def build_cli(world: World) -> click.Group:
    """The command tree over what `world` (the composition root's) opens and builds."""

    @click.group(cls=LastgoodGroup, lazy=COMMANDS, summaries=SUMMARIES,
                 context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="lastgood")
    @click.option("--traceback", is_flag=True, help="Show the full traceback on errors.")
    @click.pass_context
    def cli(ctx: click.Context, traceback: bool) -> None:
        """lastgood puts the last verified model version back into production."""
        ctx.obj = CliContext(settings=load_settings(), world=world, traceback=traceback)

    return cli
