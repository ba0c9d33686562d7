#!/bin/sh
# Entry point of the Port Authorizing image: the first argument names what to run.
# Each service runs in this process (node with tsx as its loader), so SIGTERM
# reaches it directly and the data plane drains before it exits.
set -eu
# The repository root: /app in the image, wherever this file lives otherwise.
cd "$(dirname "$0")/../.."

service="${1:-control-plane}"
if [ "$#" -gt 0 ]; then shift; fi

case "$service" in
  control-plane) exec node --import tsx services/control-plane/src/main.ts "$@" ;;
  data-plane)    exec node --import tsx services/data-plane/src/main.ts "$@" ;;
  migrate)       exec node --import tsx services/control-plane/src/migrate.ts "$@" ;;
  demo-backends) exec node deploy/docker/demo-backends.mjs "$@" ;;
  pa)            exec node packages/cli/bin/pa "$@" ;;
  help|--help|-h)
    echo "usage: <image> control-plane | data-plane | migrate | demo-backends | pa ARGS… | COMMAND ARGS…"
    ;;
  *)             exec "$service" "$@" ;;
esac
