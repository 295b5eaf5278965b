/*
 * main.c - nofussd's command line: settings, the --check mode, start-up and
 * shutdown. Everything else lives in the files nofussd.h lists.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "nofussd.h"

/* Descriptors kept beyond one per connection: listening socket, epoll,
 * signalfd, inotify, eventfds, log, images being sent, ... */
#define NF_SPARE_FDS 64

/* At exit, the store gets this long to write what is queued when its
 * database fails (half waiting, half retrying): the unit's TimeoutStopSec
 * (30) covers grace (10) and this. */
#define NF_STORE_CLOSE_MS 10000

/* Exit statuses, documented in --help and nofussd(8). */
enum { EXIT_OK = 0, EXIT_INVALID = 1, EXIT_USAGE = 2, EXIT_START = 3 };

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofussd [OPTION]...\n"
	        "Serve NoFUSS firmware update checks and images to ESP8266/ESP32 devices.\n"
	        "\n"
	        "  -d, --data-dir DIR        data folder: DIR/versions.json and DIR/public/\n"
	        "                            (default /var/lib/nofuss)\n"
	        "  -r, --rules FILE          rules file (default DATA-DIR/versions.json)\n"
	        "      --public DIR          images folder (default DATA-DIR/public)\n"
	        "  -l, --listen ADDR         address to listen on (default: all, IPv6 and IPv4)\n"
	        "  -p, --port N              TCP port (default 8080; 0 picks a free one)\n"
	        "  -b, --base PATH           URL prefix devices use, e.g. /nofuss (default /)\n"
	        "  -L, --check-log FILE      one line per check; - is stdout, \"\" is off\n"
	        "                            (default -); reopened on SIGUSR1\n"
	        "  -c, --config FILE         read settings from an INI file first ([nofussd]\n"
	        "                            section, keys named like the long options;\n"
	        "                            watch = no for --no-watch)\n"
	        "      --max-connections N   connections held at once (default 16384)\n"
	        "      --per-ip-limit N      connections from one address (default 0: no limit)\n"
	        "      --memory-limit BYTES  request memory per connection, which bounds the\n"
	        "                            request headers (default 2048)\n"
	        "      --idle-timeout SEC    close a connection idle this long (default 30)\n"
	        "      --grace SEC           on SIGTERM, time in-flight downloads get (default 10)\n"
	        "      --sndbuf BYTES        cap each socket's kernel send buffer; 0 leaves the\n"
	        "                            kernel's (default 65536)\n"
	        "      --no-watch            reload only on SIGHUP, not when the rules file changes\n"
	        "      --watch               reload when the rules file changes (the default)\n"
	        "      --store URL           the fleet store: sqlite:///PATH, postgresql://...,\n"
	        "                            or off (default sqlite://DATA-DIR/store/fleet.db)\n"
	        "      --store-queue N       check and download events queued for the store's\n"
	        "                            writer; more are dropped and counted (default 16384)\n"
	        "      --store-history N     history entries kept per device (default 32)\n"
	        "      --store-silent SEC    a device downloaded and not seen since is silent\n"
	        "                            after SEC (default 86400)\n"
	        "  -t, --check               validate the settings and rules, open (create,\n"
	        "                            migrate) the store, then exit\n"
	        "  -q, --quiet               only errors on stderr\n"
	        "  -v, --verbose             debug messages on stderr\n"
	        "  -h, --help                show this help and exit\n"
	        "  -V, --version             show the version and exit\n"
	        "\n"
	        "Signals: SIGHUP reloads the rules, SIGUSR1 reopens the check log,\n"
	        "SIGTERM and SIGINT stop gracefully (twice: at once).\n"
	        "\n"
	        "Exit status: 0 ok; 1 invalid settings or rules; 2 bad usage;\n"
	        "3 cannot start (address in use, folder missing, store unusable, ...).\n");
}

enum { OPT_PUBLIC = 256, OPT_MAXCONN, OPT_PERIP, OPT_MEMLIMIT, OPT_IDLE, OPT_GRACE,
       OPT_SNDBUF, OPT_NOWATCH, OPT_WATCH, OPT_STORE, OPT_STORE_QUEUE, OPT_STORE_HISTORY,
       OPT_STORE_SILENT };

static const struct option long_options[] = {
    {"data-dir", required_argument, NULL, 'd'},
    {"rules", required_argument, NULL, 'r'},
    {"public", required_argument, NULL, OPT_PUBLIC},
    {"listen", required_argument, NULL, 'l'},
    {"port", required_argument, NULL, 'p'},
    {"base", required_argument, NULL, 'b'},
    {"check-log", required_argument, NULL, 'L'},
    {"config", required_argument, NULL, 'c'},
    {"max-connections", required_argument, NULL, OPT_MAXCONN},
    {"per-ip-limit", required_argument, NULL, OPT_PERIP},
    {"memory-limit", required_argument, NULL, OPT_MEMLIMIT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"sndbuf", required_argument, NULL, OPT_SNDBUF},
    {"no-watch", no_argument, NULL, OPT_NOWATCH},
    {"watch", no_argument, NULL, OPT_WATCH},
    {"store", required_argument, NULL, OPT_STORE},
    {"store-queue", required_argument, NULL, OPT_STORE_QUEUE},
    {"store-history", required_argument, NULL, OPT_STORE_HISTORY},
    {"store-silent", required_argument, NULL, OPT_STORE_SILENT},
    {"check", no_argument, NULL, 't'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};
static const char short_options[] = "d:r:l:p:b:L:c:tqvhV";

/* The setting name of an option that takes a value, or NULL. */
static const char *setting_name(int opt)
{
	for (const struct option *o = long_options; o->name != NULL; o++)
		if (o->val == opt && o->has_arg == required_argument && opt != 'c')
			return o->name;
	return NULL;
}

/* So that --max-connections can be honoured: each connection is a file. */
static void raise_fd_limit(struct nf_config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_connections + NF_SPARE_FDS;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want) {
		cfg->max_connections = rl.rlim_cur > 2 * NF_SPARE_FDS
		                           ? (unsigned)(rl.rlim_cur - NF_SPARE_FDS)
		                           : NF_SPARE_FDS;
		nf_log(NF_LOG_WARN, "open files limited to %llu: max-connections lowered to %u",
		       (unsigned long long)rl.rlim_cur, cfg->max_connections);
	}
}

/* The store's messages, through nofussd's own log. */
static void store_log(void *ctx, enum nf_store_log_level level, const char *msg)
{
	(void)ctx;
	nf_log(level == NF_STORE_LOG_ERROR ? NF_LOG_ERROR
	       : level == NF_STORE_LOG_WARN ? NF_LOG_WARN
	                                    : NF_LOG_INFO,
	       "%s", msg);
}

/* Opens the store cfg names (creating and migrating it). Returns it, or
 * NULL: off (*failed false) or failed (*failed true, said). */
static struct nf_store *open_store(const struct nf_config *cfg, bool *failed)
{
	struct nf_store_options o = {
	    .queue_capacity = cfg->store_queue,
	    .history_max = cfg->store_history,
	    .silent_ms = (int64_t)cfg->store_silent * 1000,
	    .close_timeout_ms = NF_STORE_CLOSE_MS / 2,
	    .log = store_log,
	};
	struct nf_store *store;
	char err[NF_ERR_LEN];

	*failed = false;
	if (cfg->store[0] == '\0')
		return NULL;
	store = nf_store_open(cfg->store, &o, err, sizeof err);
	if (store == NULL) {
		char shown[NF_STORE_MAX_URL];
		nf_db_redact(cfg->store, shown, sizeof shown);
		nf_log(NF_LOG_ERROR, "store %s: %s (set store to another URL, or off)", shown, err);
		*failed = true;
	}
	return store;
}

/* Writes everything queued (retrying a failing database for a while, see
 * docs/STORE.md section 6), says what was written and lost, and closes. */
static void close_store(struct nf_store *store)
{
	struct nf_store_stats st;

	if (store == NULL)
		return;
	if (nf_store_sync(store, NF_STORE_CLOSE_MS / 2) != 0) {
		nf_store_stats(store, &st);
		nf_log(NF_LOG_WARN, "store: %zu events still queued after %u s; writing on for %u s",
		       st.depth, NF_STORE_CLOSE_MS / 2000, NF_STORE_CLOSE_MS / 2000);
	}
	/* What a failing database still refuses then is dropped, and said. */
	nf_store_close_stats(store, &st);
	nf_log(NF_LOG_INFO, "store: %llu events written, %llu dropped", (unsigned long long)st.written,
	       (unsigned long long)st.dropped);
}

/* Serves snap (whose reference it takes) until told to stop. Returns the
 * exit status. */
static int serve(struct nf_config *cfg, struct nf_snapshot *snap)
{
	struct nf_checklog *log;
	struct nf_server *srv = NULL;
	struct nf_store *store;
	char err[NF_ERR_LEN];
	bool store_failed;
	int status;

	signal(SIGPIPE, SIG_IGN);
	/* Block the signals loop.c reads through signalfd before anything can
	 * send one: a SIGHUP between start-up and the loop must not kill us. */
	nf_loop_block_signals();
	raise_fd_limit(cfg);
	/* Before listening: a store that cannot be opened is a start-up error,
	 * not a server that forgets its fleet without saying so. */
	store = open_store(cfg, &store_failed);
	if (store_failed) {
		nf_snapshot_release(snap);
		return EXIT_START;
	}
	log = nf_checklog_open(cfg->check_log, err, sizeof err);
	if (log == NULL) {
		nf_log(NF_LOG_ERROR, "%s", err);
		nf_snapshot_release(snap);
		nf_store_close(store);
		return EXIT_START;
	}
	srv = nf_server_start(cfg, snap, log, err, sizeof err);
	if (srv == NULL) {
		nf_log(NF_LOG_ERROR, "%s", err);
		status = EXIT_START;
		goto done;
	}
	nf_server_set_store(srv, store);
	status = nf_loop_run(cfg, srv, log) == 0 ? EXIT_OK : EXIT_START;
done:
	/* The daemon first: closing it ends the downloads still open, whose
	 * events go to the store; then the store writes everything queued. */
	nf_server_stop(srv);
	close_store(store);
	nf_checklog_close(log);
	if (srv != NULL)
		nf_log(NF_LOG_INFO, "stopped");
	return status;
}

/* --check: the store opens (created and migrated as at start), and closes. */
static int check_store(const struct nf_config *cfg)
{
	char shown[NF_STORE_MAX_URL];
	bool failed;
	struct nf_store *store = open_store(cfg, &failed);

	if (failed)
		return EXIT_START;
	if (store == NULL) {
		printf("nofussd: store off\n");
		return EXIT_OK;
	}
	nf_db_redact(cfg->store, shown, sizeof shown);
	printf("nofussd: store %s: schema %d, ok\n", shown, nf_store_schema(store));
	nf_store_close(store);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct nf_config cfg;
	struct nf_snapshot_params params;
	struct nf_snapshot *snap = NULL;
	bool check_only = false;
	char err[NF_ERR_LEN];
	int opt;
	struct stat st;

	nf_config_defaults(&cfg);

	/* The config file first, so that flags override it wherever they stand. */
	while ((opt = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
		if (opt == '?')
			goto usage_error;
		if (opt == 'c' && nf_config_load(&cfg, optarg, err, sizeof err) != 0) {
			fprintf(stderr, "nofussd: %s\n", err);
			return EXIT_INVALID;
		}
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
		const char *name = setting_name(opt);
		if (name != NULL) {
			if (nf_config_set(&cfg, name, optarg, err, sizeof err) != 0) {
				fprintf(stderr, "nofussd: --%s\n", err);
				goto usage_error;
			}
			continue;
		}
		switch (opt) {
		case OPT_NOWATCH: cfg.watch = false; break;
		case OPT_WATCH: cfg.watch = true; break;
		case 't': check_only = true; break;
		case 'q': nf_log_set_level(NF_LOG_ERROR); break;
		case 'v': nf_log_set_level(NF_LOG_DEBUG); break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': printf("nofussd %s\n", NOFUSS_VERSION); return EXIT_OK;
		default: break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nofussd: unexpected argument \"%s\"\n", argv[optind]);
		goto usage_error;
	}
	if (nf_config_finish(&cfg, err, sizeof err) != 0) {
		fprintf(stderr, "nofussd: %s\n", err);
		return EXIT_INVALID;
	}

	if (stat(cfg.public_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		nf_log(NF_LOG_ERROR, "public folder %s: %s", cfg.public_dir,
		       errno ? strerror(errno) : "not a folder");
		return check_only ? EXIT_INVALID : EXIT_START;
	}
	/* The first snapshot is built here, before listening; reloads are
	 * built on the builder thread (loop.c). --check skips the MD5s. */
	params = (struct nf_snapshot_params){cfg.rules_path, cfg.public_dir, !check_only};
	snap = nf_snapshot_build(&params, NULL, err, sizeof err);
	if (snap == NULL) {
		nf_log(NF_LOG_ERROR, "%s", err);
		return EXIT_INVALID;
	}
	if (check_only) {
		printf("nofussd: %s: %zu rules, ok\n", cfg.rules_path, nf_rules_count(snap->rules));
		nf_snapshot_release(snap);
		return check_store(&cfg);
	}

	return serve(&cfg, snap);

usage_error:
	fprintf(stderr, "Try 'nofussd --help' for more information.\n");
	return EXIT_USAGE;
}
