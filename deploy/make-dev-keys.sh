#!/bin/sh
# Development keys and a database password for compose.yaml, in deploy/dev-keys/ (ignored by
# git): `guard secrets init` run in the guard's own image (no network), then the PostgreSQL
# password and its pgpass line. Each file is 0600 and owned by the uid that reads it (compose
# mounts secret files with their host owner and mode): 10001, the guard's user, and 999,
# PostgreSQL's. Existing files are kept, so running it again changes nothing.
#
#   docker compose build && deploy/make-dev-keys.sh
#
# Start over: `sudo rm -rf deploy/dev-keys` (and `docker compose down -v`: the database volume
# was initialised with the old password, and its audit log signed with the old key).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/dev-keys"
image="${GUARD_IMAGE:-likeness-guard:0.1.0}"
mkdir -p "$out"
docker run --rm --user 0:0 --network none --volume "$out:/out" \
    --env GUARD_DATA_DIR=/out "$image" sh -eu -c '
    guard secrets init
    umask 077
    if [ ! -s /out/postgres-password ]; then
        python -c "import secrets; print(secrets.token_urlsafe(32), end=\"\")" \
            > /out/postgres-password
    fi
    printf "postgres:5432:guard:guard:%s\n" "$(cat /out/postgres-password)" > /out/pgpass
    chmod 0600 /out/pgpass /out/postgres-password
    chown -R 10001:10001 /out/keys /out/pgpass
    chown 999:999 /out/postgres-password
'
echo "development keys in $out (never commit them; production: docs/deploy.md, Keys)"
