# bench/admin_data.sh - what bench/admin.sh, bench/releases.sh and
# bench/web.sh share, sourced by each after it set NAME: a data folder in
# $tmp (removed at exit with the nofussd whose pid is in $pid), an empty
# versions.json and public/, and an admin token in $token and $tmp/tokens.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nofuss-$NAME-bench.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir "$tmp/public"
echo '[]' >"$tmp/versions.json"
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token admin bench" >"$tmp/tokens"
chmod 600 "$tmp/tokens"
