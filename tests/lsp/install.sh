#!/usr/bin/env bash
# Install the Red Hat YAML language server used by tests/lsp (idempotent, quiet).
#   tests/lsp/install.sh
# Needs Node.js >= 18 and npm; installs into tests/lsp/node_modules.
set -euo pipefail

VERSION="1.25.0"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pkg="$here/node_modules/yaml-language-server/package.json"

if [ -f "$pkg" ] && node -e "process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)" "$pkg" "$VERSION"; then
  exit 0
fi

npm install --prefix "$here" --no-audit --no-fund --no-save --loglevel=error \
  "yaml-language-server@$VERSION" >/dev/null
