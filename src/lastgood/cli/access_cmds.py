"""`token create|list|revoke`, `key create|list`, and `server` (the control plane)."""

from __future__ import annotations

import click

from lastgood.cli.app import get, json_option
from lastgood.cli.render import table, when
from lastgood.domain.access import Role
from lastgood.services.access import parse_lifetime
from lastgood.services.views import key_view, token_view

ROLES = [r.label for r in Role]


@click.group()
def token() -> None:
    """API tokens for the control plane (stored hashed; the secret is shown once)."""


@token.command("create")
@click.argument("owner")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="viewer reads; operator deploys, verifies, rolls back; admin manages.")
@click.option("--expires-in", default="never", show_default=True, metavar="DURATION",
              help="Lifetime such as 90d, 12h or 30m, or never.")
@json_option
@click.pass_context
def token_create(ctx: click.Context, owner: str, role: str, expires_in: str,
                 as_json: bool) -> None:
    """Issue a token for OWNER (a person or a service account)."""
    cli = get(ctx)
    issued = cli.services.access.create_token(owner, role=Role.parse(role), actor=cli.actor,
                                              expires_in_s=parse_lifetime(expires_in))
    if as_json:
        cli.emit_json(token_view(issued.record) | {"token": issued.secret})
        return
    cli.err.print(f"token {issued.record.id} for {owner} ({role}) — shown once, keep it safe:")
    click.echo(issued.secret)


@token.command("list")
@json_option
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    cli = get(ctx)
    found = cli.services.access.tokens()
    if as_json:
        cli.emit_json([token_view(t) for t in found])
        return
    cli.out.print(table("Tokens", ["id", "owner", "role", "created", "by", "expires", "revoked"],
                        [(t.id, t.owner, t.role.label, when(t.created_at), t.created_by,
                          when(t.expires_at) if t.expires_at else "never",
                          when(t.revoked_at) if t.revoked_at else "") for t in found]))


@token.command("revoke")
@click.argument("token_id")
@json_option
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str, as_json: bool) -> None:
    """Revoke a token for good."""
    cli = get(ctx)
    record = cli.services.access.revoke_token(token_id, actor=cli.actor)
    if as_json:
        cli.emit_json(token_view(record))
    else:
        cli.out.print(f"revoked token {record.id} of {record.owner}")


@click.group()
def key() -> None:
    """ed25519 signing keys: the private half stays here, the registry records the public."""


@key.command("create")
@click.argument("name")
@json_option
@click.pass_context
def key_create(ctx: click.Context, name: str, as_json: bool) -> None:
    """Create key NAME under $LASTGOOD_HOME/keys (0600) and record its public key."""
    cli = get(ctx)
    record = cli.services.signing.create_key(name, actor=cli.actor)
    if as_json:
        cli.emit_json(key_view(record))
        return
    cli.out.print(f"created signing key [bold]{record.name}[/] (ed25519, fingerprint "
                  f"{record.fingerprint}); private key in "
                  f"{cli.settings.home / 'keys' / (record.name + '.key')}")
    cli.out.print(f"trust it: lastgood env set ENV --require-signature --trusted-key {name}")


@key.command("list")
@json_option
@click.pass_context
def key_list(ctx: click.Context, as_json: bool) -> None:
    """List the public keys the registry knows."""
    cli = get(ctx)
    found = cli.services.signing.public_keys()
    if as_json:
        cli.emit_json([key_view(k) for k in found])
        return
    cli.out.print(table("Signing keys", ["name", "algorithm", "fingerprint", "created", "by"],
                        [(k.name, k.algorithm, k.fingerprint, when(k.created_at), k.created_by)
                         for k in found]))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--with-serving", "with_serving", metavar="ENV",
              help="Also run a serving replica for ENV (the prediction API).")
@click.option("--serving-port", type=click.IntRange(0, 65535), default=8080,
              show_default=True, help="Port of the prediction API with --with-serving.")
@click.option("--sync-mlflow", "sync_mlflow_s", type=click.FloatRange(min=1), metavar="SECONDS",
              help="Also import from MLflow, follow its aliases and mirror to it every SECONDS "
                   "(MLFLOW_TRACKING_URI).")
@click.pass_context
def server(ctx: click.Context, host: str, port: int, with_serving: str | None,
           serving_port: int, sync_mlflow_s: float | None) -> None:
    """Run the control plane: REST API, OpenAPI document and dashboard (until Ctrl-C)."""
    from lastgood.bootstrap.processes import ServerOptions, run_server

    cli = get(ctx)
    run_server(cli.settings, ServerOptions(
        host=host, port=port, with_serving=with_serving, serving_port=serving_port,
        sync_mlflow_s=sync_mlflow_s,
        announce=lambda url: cli.err.print(f"control plane on {url} (dashboard {url}/, "
                                           f"OpenAPI {url}/openapi.json)")))
