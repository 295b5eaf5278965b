# bench/procs.sh - sourced by bench/server.sh, bench/reload.sh and
# bench/slowloris.sh: the processes a benchmark starts, and their clean-up at
# exit; and the before/after builds of the scripts that compare two.
#
# A script appends the pid of each process it starts to PIDS, calls forget
# PID once it has waited for it, and sets, before sourcing this file, T (its
# temporary folder) and SCRIPT (its name, for messages). At exit every
# process still in PIDS that is a child of the script is stopped (TERM, then
# KILL), and T is removed unless BENCH_KEEP=1.

PIDS=()

# Forget a process once it has been waited for, so that clean-up can never
# signal a later process that happens to get the same pid.
forget() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}
cleanup() {
	local p
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do
		# Only our own children: their parent is this shell.
		if [ "$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null)" = "$$" ]; then
			kill -TERM "$p" 2>/dev/null
			sleep 0.2
			kill -KILL "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		fi
	done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		printf '%s: kept %s\n' "$SCRIPT" "$T" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'printf "%s: interrupted\n" "$SCRIPT" >&2; exit 130' INT TERM

# Release builds to compare, into $T/bin: nofussd-before from git revision
# BEFORE_REV (exported with `git archive`, built in $T), nofussd-after from
# NOFUSSD when set, else this tree (built in build-release/). Sets
# AFTER_INFO. Needs ROOT, BEFORE_REV, $T/bin and $T/logs, say and die.
build_before_after() {
	say "building $BEFORE_REV (before) ..."
	mkdir -p "$T/before-src"
	git -C "$ROOT" archive "$BEFORE_REV" | tar -x -C "$T/before-src" || die "cannot export $BEFORE_REV"
	cmake -S "$T/before-src" -B "$T/before-build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
		>"$T/logs/before-cmake.log" 2>&1 &&
		cmake --build "$T/before-build" -j2 --target nofussd >>"$T/logs/before-cmake.log" 2>&1 ||
		die "cannot build $BEFORE_REV: see $T/logs/before-cmake.log (BENCH_KEEP=1 keeps it)"
	cp "$T/before-build/server/nofussd" "$T/bin/nofussd-before"
	if [ -z "${NOFUSSD:-}" ]; then
		say "building this tree (after) ..."
		cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null &&
			cmake --build "$ROOT/build-release" -j2 --target nofussd >/dev/null ||
			die "cannot build nofussd"
	fi
	cp "${NOFUSSD:-$ROOT/build-release/server/nofussd}" "$T/bin/nofussd-after" || die "no nofussd to measure"
	AFTER_INFO="this tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
	[ -z "$(git -C "$ROOT" status --porcelain -- server common 2>/dev/null)" ] ||
		AFTER_INFO="$AFTER_INFO with uncommitted server changes"
}
