# bench/procs.sh - sourced by bench/server.sh and bench/reload.sh: the
# processes a benchmark starts, and their clean-up at exit.
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
