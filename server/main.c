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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>

#include "admin.h"
#include "common.h"
#include "nofussd.h"
#include "store.h"
#include "tls.h"

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
	        "      --header-timeout SEC  close a connection whose request head is not\n"
	        "                            complete this long after it began (default 10)\n"
	        "      --grace SEC           on SIGTERM, time in-flight downloads get (default 10)\n"
	        "      --sndbuf BYTES        cap each socket's kernel send buffer; 0 leaves the\n"
	        "                            kernel's (default 65536)\n"
	        "      --max-downloads N     image transfers at once (default 0: no limit);\n"
	        "                            past it, offers are deferred (\"no update now\")\n"
	        "                            and image requests get 503 (docs/ROLLOUTS.md)\n"
	        "      --retry-after SEC     the Retry-After of those 503s, 1-3600 (default 30)\n"
	        "      --pubkey FILE         rules may only name images signed by this RSA\n"
	        "                            key's private half (PEM; docs/SIGNING.md); a rule\n"
	        "                            naming any other image is skipped with a warning\n"
	        "      --tls-cert FILE       serve HTTPS with this certificate chain (PEM, the\n"
	        "                            server's certificate first); reread on SIGHUP\n"
	        "      --tls-key FILE        its private key (PEM)\n"
	        "      --tls-priorities STR  GnuTLS priority string (default: TLS 1.3 and 1.2,\n"
	        "                            AEAD ciphers, ECDHE; docs/OPERATIONS.md)\n"
	        "      --credentials FILE    images only for devices presenting a credential of\n"
	        "                            this file (HTTP Basic or bearer; NAME:SALT:HASH\n"
	        "                            lines); reread with the rules\n"
	        "      --auth-checks         checks need a credential too\n"
	        "      --hash-credential NAME  print the credentials-file line for NAME and the\n"
	        "                            secret read from stdin (none: one is made and\n"
	        "                            printed on stderr), then exit\n"
	        "      --no-watch            reload only on SIGHUP, not when the rules file changes\n"
	        "      --watch               reload when the rules file changes (the default)\n"
	        "      --admin-token-file FILE  serve the admin API and /metrics, to the bearer\n"
	        "                            tokens in FILE (docs/ADMIN.md; default: off)\n"
	        "      --admin-listen ADDR   the admin listener's address (default 127.0.0.1)\n"
	        "      --admin-port N        its TCP port (default 8081; 0 picks a free one)\n"
	        "      --admin-tls-cert FILE  serve the admin API over HTTPS with this\n"
	        "                            certificate chain (PEM); reread on SIGHUP. Without\n"
	        "                            it, an admin-listen other than loopback is warned of\n"
	        "      --admin-tls-key FILE  its private key (PEM); priorities: --tls-priorities\n"
	        "      --admin-web-dir DIR   the back office page's files, served at /ui/ on the\n"
	        "                            admin listener (docs/WEB.md; default: the installed\n"
	        "                            " NF_WEB_INSTALL_HINT ", or the source tree's web/\n"
	        "                            when nofussd runs from its build tree)\n"
	        "      --admin-session-lifetime SEC  a web sign-in lasts SEC (default 28800, 8 h)\n"
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
	        "Signals: SIGHUP reloads the rules, the credentials and the TLS certificates,\n"
	        "SIGUSR1 reopens the check log, SIGTERM and SIGINT stop gracefully (twice:\n"
	        "at once).\n"
	        "\n"
	        "Exit status: 0 ok; 1 invalid settings or rules; 2 bad usage;\n"
	        "3 cannot start (address in use, folder missing, store unusable, ...).\n");
}

enum { OPT_PUBLIC = 256, OPT_MAXCONN, OPT_PERIP, OPT_MEMLIMIT, OPT_IDLE, OPT_HEADER, OPT_GRACE,
       OPT_SNDBUF, OPT_NOWATCH, OPT_WATCH, OPT_ADMIN_TOKENS, OPT_ADMIN_LISTEN, OPT_ADMIN_PORT,
       OPT_STORE, OPT_STORE_QUEUE, OPT_STORE_HISTORY, OPT_STORE_SILENT, OPT_PUBKEY, OPT_TLS_CERT,
       OPT_TLS_KEY, OPT_TLS_PRIORITIES, OPT_CREDENTIALS, OPT_AUTH_CHECKS, OPT_HASH_CREDENTIAL,
       OPT_ADMIN_TLS_CERT, OPT_ADMIN_TLS_KEY, OPT_MAX_DOWNLOADS, OPT_RETRY_AFTER,
       OPT_ADMIN_WEB_DIR, OPT_ADMIN_SESSION };

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
    {"header-timeout", required_argument, NULL, OPT_HEADER},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"sndbuf", required_argument, NULL, OPT_SNDBUF},
    {"max-downloads", required_argument, NULL, OPT_MAX_DOWNLOADS},
    {"retry-after", required_argument, NULL, OPT_RETRY_AFTER},
    {"pubkey", required_argument, NULL, OPT_PUBKEY},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-priorities", required_argument, NULL, OPT_TLS_PRIORITIES},
    {"credentials", required_argument, NULL, OPT_CREDENTIALS},
    {"auth-checks", no_argument, NULL, OPT_AUTH_CHECKS},
    {"hash-credential", required_argument, NULL, OPT_HASH_CREDENTIAL},
    {"no-watch", no_argument, NULL, OPT_NOWATCH},
    {"watch", no_argument, NULL, OPT_WATCH},
    {"admin-token-file", required_argument, NULL, OPT_ADMIN_TOKENS},
    {"admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN},
    {"admin-port", required_argument, NULL, OPT_ADMIN_PORT},
    {"admin-tls-cert", required_argument, NULL, OPT_ADMIN_TLS_CERT},
    {"admin-tls-key", required_argument, NULL, OPT_ADMIN_TLS_KEY},
    {"admin-web-dir", required_argument, NULL, OPT_ADMIN_WEB_DIR},
    {"admin-session-lifetime", required_argument, NULL, OPT_ADMIN_SESSION},
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
		if (o->val == opt && o->has_arg == required_argument && opt != 'c' &&
		    opt != OPT_HASH_CREDENTIAL)
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

/* Whether addr (numeric, as nf_config_finish checked) is a loopback
 * address: 127.0.0.0/8, ::1, or ::ffff:127.x.y.z. */
static bool is_loopback(const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &a6) != 1)
		return false;
	return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
}

/* The admin listener reachable from elsewhere without TLS sends its tokens
 * in clear text: said at start and by --check, never refused (a private
 * network, or a TLS proxy on the same host, may be the operator's choice). */
static void warn_clear_admin(const struct nf_config *cfg)
{
	if (cfg->admin_token_file[0] == '\0' || cfg->admin_tls_cert[0] != '\0' ||
	    is_loopback(cfg->admin_listen))
		return;
	nf_log(NF_LOG_WARN, "admin-listen %s is not a loopback address and the admin listener has "
	       "no TLS: its bearer tokens and answers travel in clear text; set admin-tls-cert and "
	       "admin-tls-key (docs/ADMIN.md section 1)", cfg->admin_listen);
}

/* Starts the admin listener when a token file is set, with TLS when
 * admin-tls-cert is. Returns 0 (with *out NULL when off; *tls NULL without
 * TLS, else the caller's to close after nf_admin_stop) or -1 after saying
 * why. */
static int start_admin(const struct nf_config *cfg, struct nf_store *store,
                       const struct nf_loop_mail *mail,
                       const struct nf_server *srv, struct nf_admin **out, struct nf_tls **tls)
{
	struct nf_admin_params p = {
	    .listen = cfg->admin_listen,
	    .port = cfg->admin_port,
	    .token_file = cfg->admin_token_file,
	    .metrics_open = !cfg->admin_metrics_auth,
	    .store = store,
	    .public_dir = cfg->public_dir,
	    .pubkey = nf_server_snapshot(srv)->pubkey, /* the one key, for the whole run */
	    .counters = nf_server_counters(srv),
	    .rules = mail->rules,
	    .plans = mail->plans,
	    .web_dir = cfg->admin_web_dir,
	    .session_lifetime = cfg->admin_session_lifetime,
	};
	char err[NF_ERR_LEN];
	bool v6 = strchr(cfg->admin_listen, ':') != NULL;

	*out = NULL;
	*tls = NULL;
	if (cfg->admin_token_file[0] == '\0')
		return 0;
	warn_clear_admin(cfg);
	if (cfg->admin_tls_cert[0] != '\0') {
		*tls = nf_tls_open("admin-tls", cfg->admin_tls_cert, cfg->admin_tls_key,
		                   cfg->tls_priorities, err, sizeof err);
		if (*tls == NULL) {
			nf_log(NF_LOG_ERROR, "%s", err);
			return -1;
		}
		p.mhd_flags = nf_tls_mhd_flags(*tls);
		p.mhd_options = nf_tls_mhd_options(*tls);
	}
	*out = nf_admin_start(&p, err, sizeof err);
	if (*out == NULL) {
		nf_log(NF_LOG_ERROR, "%s", err);
		nf_tls_close(*tls);
		*tls = NULL;
		return -1;
	}
	nf_log(NF_LOG_INFO, "admin API at %s://%s%s%s:%u/api/v1/%s; the web page at /ui/", *tls != NULL ? "https" : "http",
	       v6 ? "[" : "", cfg->admin_listen, v6 ? "]" : "", nf_admin_port(*out),
	       store != NULL ? "" : " (the fleet store is off: the API answers 503)");
	return 0;
}

/* --hash-credential NAME: the line for the secret on stdin, or for a new
 * random one (printed on stderr). Returns the exit status. */
static int hash_credential(const char *name)
{
	char secret[NF_MAX_AUTH], line[NF_MAX_AUTH + 256], err[NF_ERR_LEN];
	unsigned char random[16];
	size_t len = 0;

	if (fgets(secret, sizeof secret, stdin) != NULL)
		len = strcspn(secret, "\r\n");
	secret[len] = '\0';
	if (len == 0) {
		if (RAND_bytes(random, sizeof random) != 1) {
			fprintf(stderr, "nofussd: no random bytes\n");
			return EXIT_INVALID;
		}
		nf_hex_encode(random, sizeof random, secret);
		fprintf(stderr, "secret for %s: %s\n", name, secret);
	}
	if (nf_creds_hash_line(name, secret, line, sizeof line, err, sizeof err) != 0) {
		fprintf(stderr, "nofussd: --hash-credential: %s\n", err);
		return EXIT_INVALID;
	}
	printf("%s\n", line);
	return EXIT_OK;
}

/* One listener's certificate, its key and the priorities, as the server
 * will load them (setting: "tls" or "admin-tls"; nothing when cert is "");
 * say: print "ok" (--check). Returns 0, or -1 (said). */
static int check_tls(const char *setting, const char *cert, const char *key,
                     const char *priorities, bool say)
{
	char err[NF_ERR_LEN];
	struct nf_tls *tls;

	if (cert[0] == '\0')
		return 0;
	tls = nf_tls_open(setting, cert, key, priorities, err, sizeof err);
	if (tls == NULL) {
		nf_log(NF_LOG_ERROR, "%s", err);
		return -1;
	}
	nf_tls_close(tls);
	if (say)
		printf("nofussd: %s: %s and %s, ok\n", strcmp(setting, "tls") == 0 ? "TLS" : "admin TLS",
		       cert, key);
	return 0;
}

/* Serves snap (whose reference it takes) until told to stop. Returns the
 * exit status. */
static int serve(struct nf_config *cfg, struct nf_snapshot *snap)
{
	struct nf_checklog *log;
	struct nf_server *srv = NULL;
	struct nf_store *store;
	struct nf_admin *admin = NULL;
	struct nf_tls *admin_tls = NULL;
	struct nf_loop_mail mail = {NULL, NULL};
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
	/* Where new rules and rollout plans reach the loop; the admin listener
	 * reads the newest of each (shadowing, explain). */
	mail.rules = nf_mailbox_new(nf_server_snapshot(srv), err, sizeof err);
	if (mail.rules != NULL && store != NULL)
		mail.plans = nf_mailbox_new(NULL, err, sizeof err);
	if (mail.rules == NULL || (store != NULL && mail.plans == NULL)) {
		nf_log(NF_LOG_ERROR, "%s", err);
		status = EXIT_START;
		goto done;
	}
	/* After the store is open and the counters exist; stopped before
	 * either goes. */
	if (start_admin(cfg, store, &mail, srv, &admin, &admin_tls) != 0) {
		status = EXIT_START;
		goto done;
	}
	nf_server_set_admin_tls(srv, admin_tls); /* SIGHUP reloads it too */
	status = nf_loop_run(cfg, srv, log, &mail) == 0 ? EXIT_OK : EXIT_START;
done:
	/* The admin listener first (it reads the store), then the daemon:
	 * closing it ends the downloads still open, whose events go to the
	 * store; then the store writes everything queued. */
	nf_admin_stop(admin);
	if (srv != NULL)
		nf_server_set_admin_tls(srv, NULL);
	nf_tls_close(admin_tls); /* after its daemon: no handshake can ask for it */
	nf_mailbox_free(mail.plans);
	nf_mailbox_free(mail.rules);
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

/* --check: the admin token file loads (when one is set). 0 or -1 (said). */
static int check_admin_tokens(const struct nf_config *cfg)
{
	struct nf_admin_tokens tokens;
	char err[NF_ERR_LEN];

	if (cfg->admin_token_file[0] == '\0')
		return 0;
	if (nf_admin_tokens_load(&tokens, cfg->admin_token_file, err, sizeof err) != 0) {
		nf_log(NF_LOG_ERROR, "%s", err);
		return -1;
	}
	nf_admin_tokens_free(&tokens);
	return 0;
}

int main(int argc, char **argv)
{
	struct nf_config cfg;
	struct nf_snapshot_params params;
	struct nf_snapshot *snap = NULL;
	struct nf_sign_key *pubkey = NULL;
	bool check_only = false;
	int status;
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
		case OPT_AUTH_CHECKS: cfg.auth_checks = true; break;
		case OPT_HASH_CREDENTIAL: return hash_credential(optarg);
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

	if (cfg.pubkey[0] != '\0' &&
	    nf_sign_key_load(cfg.pubkey, 0, 0, &pubkey, err, sizeof err) != NF_SIGN_OK) {
		nf_log(NF_LOG_ERROR, "pubkey: %s", err);
		return EXIT_INVALID;
	}
	/* At start too, so that a bad certificate is exit 1 like a bad rule. */
	if (check_tls("tls", cfg.tls_cert, cfg.tls_key, cfg.tls_priorities, check_only) != 0 ||
	    check_tls("admin-tls", cfg.admin_tls_cert, cfg.admin_tls_key, cfg.tls_priorities,
	              check_only) != 0)
		return EXIT_INVALID;
	if (check_only)
		warn_clear_admin(&cfg);
	if (stat(cfg.public_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		nf_log(NF_LOG_ERROR, "public folder %s: %s", cfg.public_dir,
		       errno ? strerror(errno) : "not a folder");
		return check_only ? EXIT_INVALID : EXIT_START;
	}
	/* The first snapshot is built here, before listening; reloads are
	 * built on the builder thread (loop.c). --check skips the MD5s. */
	params = (struct nf_snapshot_params){cfg.rules_path, cfg.public_dir, !check_only, pubkey,
	                                     cfg.credentials, NULL, 0};
	snap = nf_snapshot_build(&params, NULL, err, sizeof err);
	if (snap == NULL) {
		nf_log(NF_LOG_ERROR, "%s", err);
		status = EXIT_INVALID;
	} else if (check_only) {
		printf("nofussd: %s: %zu rules, ok", cfg.rules_path, nf_rules_count(snap->rules));
		if (pubkey != NULL)
			printf("; %zu skipped: their images do not verify with %s", snap->refused,
			       cfg.pubkey);
		if (snap->creds != NULL)
			printf("; %zu device credentials", nf_creds_count(snap->creds));
		printf("\n");
		nf_snapshot_release(snap);
		status = check_admin_tokens(&cfg) != 0 ? EXIT_INVALID : check_store(&cfg);
	} else {
		if (pubkey != NULL)
			nf_log(NF_LOG_INFO, "rules may only name images signed for the %u-bit key %s",
			       nf_sign_key_bits(pubkey), cfg.pubkey);
		status = serve(&cfg, snap);
	}
	nf_sign_key_free(pubkey); /* every thread that used it has stopped */
	return status;

usage_error:
	fprintf(stderr, "Try 'nofussd --help' for more information.\n");
	return EXIT_USAGE;
}
