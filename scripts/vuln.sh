#!/usr/bin/env bash
# make vuln: govulncheck over every package, against the Go vulnerability
# database built offline from golang.org/x/vulndb (fetched through the module
# proxy), since govulncheck's online database cannot be reached from every
# machine. The database is built once per vulndb version and cached.
set -euo pipefail
cd "$(dirname "$0")/.."
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
cache=${VULNDB_DIR:-$(go env GOCACHE)/busline-vulndb/$VULNDB_VERSION}

if [ ! -f "$cache/db/index/db.json" ]; then
  echo "vuln: building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION (a few minutes, once)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  src=$(cd "$work" && go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src/data/osv" ] || { echo "vuln: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv" >&2; exit 1; }
  # gendb reads a git repository: give it one holding the module's data.
  mkdir -p "$work/repo"
  cp -r "$src/data" "$work/repo/data"
  chmod -R u+w "$work/repo"
  git -C "$work/repo" init -q
  git -C "$work/repo" add -A
  git -C "$work/repo" -c user.name=busline -c user.email=busline@localhost commit -qm "vulndb $VULNDB_VERSION"
  (cd "$work" && go run "golang.org/x/vulndb/cmd/gendb@$VULNDB_VERSION" -repo ./repo -out ./db)
  mkdir -p "$cache"
  rm -rf "$cache/db"
  mv "$work/db" "$cache/db"
fi
echo "vuln: $(go version), database golang.org/x/vulndb@$VULNDB_VERSION"
go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" -db "file://$cache/db" ./...
