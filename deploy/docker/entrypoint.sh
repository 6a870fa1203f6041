#!/bin/sh
# The container's entrypoint: `lastgood serve` for one environment on one port.
#
#   (no argument) or `serve [OPTIONS]`  serve $LASTGOOD_SERVE_ENV on $LASTGOOD_SERVE_PORT (8080);
#                                       SageMaker starts a container as `<image> serve`
#   anything else                       run that lastgood command (`lastgood status ...`)
#
# The registry and the artifact store come from LASTGOOD_DB_URL and LASTGOOD_STORE_URL, as for
# every lastgood process; the replica follows the registry's desired state, so a rollback never
# needs a new image, a new revision or an endpoint update.
set -eu

if [ "$#" -eq 0 ] || [ "$1" = "serve" ]; then
  [ "$#" -gt 0 ] && shift
  if [ -z "${LASTGOOD_SERVE_ENV:-}" ]; then
    echo "error: LASTGOOD_SERVE_ENV is not set (fix: set it to the environment to serve, e.g. production)" >&2
    exit 2
  fi
  exec lastgood serve --env "$LASTGOOD_SERVE_ENV" \
    --host "${LASTGOOD_SERVE_HOST:-0.0.0.0}" --port "${LASTGOOD_SERVE_PORT:-8080}" "$@"
fi
exec lastgood "$@"
