/*
 * config.c - nofussd's settings: defaults, then an INI file (inih), then
 * the command line. The INI keys are the long option names, so
 * "--idle-timeout 30" and "idle-timeout = 30" mean the same thing.
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>
#include <sys/stat.h>

#include "nofussd.h"

void nf_config_defaults(struct nf_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->port = 8080;
	snprintf(cfg->data_dir, sizeof cfg->data_dir, "/var/lib/nofuss");
	snprintf(cfg->check_log, sizeof cfg->check_log, "-");
	cfg->max_connections = 16384;
	/* 2 KiB holds a full ESP8266/ESP32 updater header set and keeps 10,000
	 * idle devices near 30 MB (bench/server.sh); MHD's default is 32 KiB. */
	cfg->memory_limit = 2048;
	/* Each slow download otherwise pins up to ~1 MB of kernel send buffer:
	 * 2,000 of them held 2.2 GB; capped, 274 MB at the same rate. */
	cfg->sndbuf = 65536;
	cfg->idle_timeout = 30;
	/* nginx's client_header_timeout is 60 s; a device sends its whole head
	 * in one packet, so 10 s is generous on any link and frees a slot held
	 * by a dripping client six times sooner. */
	cfg->header_timeout = 10;
	cfg->grace_seconds = 10;
	cfg->watch = true;
	snprintf(cfg->admin_listen, sizeof cfg->admin_listen, "127.0.0.1");
	cfg->admin_port = 8081; /* NF_ADMIN_DEFAULT_PORT (server/admin/admin.h) */
	cfg->admin_metrics_auth = true;
	cfg->admin_session_lifetime = 28800; /* NF_ADMIN_SESSION_DEFAULT_S (admin.h) */
	cfg->store_queue = NF_STORE_DEFAULT_QUEUE;
	cfg->store_history = NF_STORE_DEFAULT_HISTORY;
	cfg->store_silent = (unsigned)(NF_STORE_DEFAULT_SILENT_MS / 1000);
	/* Long enough for a transfer or two to end, short enough that a stock
	 * updater retrying at its own interval is not what paces the fleet. */
	cfg->retry_after = 30;
}

static int set_string(char *dst, size_t cap, const char *key, const char *value, char *err,
                      size_t errlen)
{
	if (strlen(value) >= cap) {
		snprintf(err, errlen, "%s: longer than %zu bytes", key, cap - 1);
		return -1;
	}
	memcpy(dst, value, strlen(value) + 1);
	return 0;
}

static int set_unsigned(unsigned *dst, const char *key, const char *value, unsigned min,
                        unsigned max, char *err, size_t errlen)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max) {
		snprintf(err, errlen, "%s: \"%s\" is not a number from %u to %u", key, value, min, max);
		return -1;
	}
	*dst = (unsigned)v;
	return 0;
}

static int set_bool(bool *dst, const char *key, const char *value, char *err, size_t errlen)
{
	static const char *const yes[] = {"1", "yes", "true", "on"};
	static const char *const no[] = {"0", "no", "false", "off"};

	for (int i = 0; i < 4; i++) {
		if (strcasecmp(value, yes[i]) == 0)
			return *dst = true, 0;
		if (strcasecmp(value, no[i]) == 0)
			return *dst = false, 0;
	}
	snprintf(err, errlen, "%s: \"%s\" is not yes or no", key, value);
	return -1;
}

int nf_config_set(struct nf_config *cfg, const char *key, const char *value, char *err,
                  size_t errlen)
{
#define STR(k, f) if (strcmp(key, k) == 0) return set_string(cfg->f, sizeof cfg->f, key, value, err, errlen)
#define NUM(k, f, lo, hi) if (strcmp(key, k) == 0) return set_unsigned(&cfg->f, key, value, lo, hi, err, errlen)
	STR("listen", listen);
	STR("base", base);
	STR("data-dir", data_dir);
	STR("rules", rules_path);
	STR("public", public_dir);
	STR("check-log", check_log);
	STR("pubkey", pubkey);
	STR("tls-cert", tls_cert);
	STR("tls-key", tls_key);
	STR("tls-priorities", tls_priorities);
	STR("credentials", credentials);
	NUM("port", port, 0, 65535);
	NUM("max-connections", max_connections, 1, 1000000);
	NUM("per-ip-limit", per_ip_limit, 0, 1000000);
	NUM("memory-limit", memory_limit, 1024, 1024 * 1024);
	NUM("idle-timeout", idle_timeout, 1, 86400);
	NUM("header-timeout", header_timeout, 1, 3600);
	NUM("grace", grace_seconds, 0, 3600);
	NUM("sndbuf", sndbuf, 0, 64 * 1024 * 1024);
	STR("admin-listen", admin_listen);
	NUM("admin-port", admin_port, 0, 65535);
	STR("admin-token-file", admin_token_file);
	STR("admin-tls-cert", admin_tls_cert);
	STR("admin-tls-key", admin_tls_key);
	STR("admin-web-dir", admin_web_dir);
	NUM("admin-session-lifetime", admin_session_lifetime, 1, 604800);
	NUM("store-queue", store_queue, NF_MIN_STORE_QUEUE, NF_MAX_STORE_QUEUE);
	NUM("store-history", store_history, 1, NF_STORE_MAX_HISTORY);
	NUM("store-silent", store_silent, NF_MIN_STORE_SILENT, NF_MAX_STORE_SILENT);
	NUM("max-downloads", max_downloads, 0, NF_MAX_DOWNLOADS);
	NUM("retry-after", retry_after, NF_MIN_RETRY_AFTER, NF_MAX_RETRY_AFTER);
	if (strcmp(key, "store") == 0) {
		cfg->store_set = true;
		return set_string(cfg->store, sizeof cfg->store, key, value, err, errlen);
	}
#undef STR
#undef NUM
	if (strcmp(key, "watch") == 0)
		return set_bool(&cfg->watch, key, value, err, errlen);
	if (strcmp(key, "admin-metrics-auth") == 0)
		return set_bool(&cfg->admin_metrics_auth, key, value, err, errlen);
	if (strcmp(key, "auth-checks") == 0)
		return set_bool(&cfg->auth_checks, key, value, err, errlen);
	snprintf(err, errlen, "unknown setting \"%s\"", key);
	return -1;
}

struct ini_state {
	struct nf_config *cfg;
	FILE *file;
	int line;              /* the line inih is handling */
	int error_line;        /* first line whose value was refused, or 0 */
	char msg[NF_ERR_LEN];
};

/* Reads for inih, counting lines, so a refused value is reported with the
 * line it stands on (inih itself only reports the first error's line). */
static char *read_line(char *str, int num, void *stream)
{
	struct ini_state *st = stream;
	char *line = fgets(str, num, st->file);

	if (line != NULL)
		st->line++;
	return line;
}

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
	struct ini_state *st = user;
	char unquoted[NF_MAX_PATH];
	size_t len = strlen(value);
	char msg[NF_ERR_LEN];

	if (st->error_line != 0)
		return 0;
	/* key = "" and key = "text" mean what they say. */
	if (len >= 2 && len < sizeof unquoted && value[0] == '"' && value[len - 1] == '"') {
		memcpy(unquoted, value + 1, len - 2);
		unquoted[len - 2] = '\0';
		value = unquoted;
	}
	if (section[0] != '\0' && strcmp(section, "nofussd") != 0) {
		snprintf(msg, sizeof msg, "section [%s]: only [nofussd] is read", section);
	} else if (nf_config_set(st->cfg, name, value, msg, sizeof msg) == 0) {
		return 1;
	}
	snprintf(st->msg, sizeof st->msg, "%s", msg);
	st->error_line = st->line;
	return 0;
}

int nf_config_load(struct nf_config *cfg, const char *path, char *err, size_t errlen)
{
	struct ini_state st = {.cfg = cfg};
	struct stat sb;
	int rc;

	st.file = fopen(path, "re");
	if (st.file == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(st.file), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		fclose(st.file);
		return -1;
	}
	rc = ini_parse_stream(read_line, &st, on_ini_value, &st);
	fclose(st.file);
	if (rc == 0)
		return 0;
	if (rc > 0 && rc == st.error_line)
		snprintf(err, errlen, "%s:%d: %s", path, rc, st.msg);
	else if (rc > 0)
		snprintf(err, errlen, "%s:%d: syntax error", path, rc);
	else
		snprintf(err, errlen, "%s: cannot be read", path);
	return -1;
}

/* "/nofuss/", "nofuss", "//nofuss" -> "/nofuss"; "/" -> "". Fails when
 * the added leading '/' does not fit. */
static int normalise_base(char *base, size_t cap)
{
	char out[sizeof ((struct nf_config *)0)->base + 1];
	size_t n = 0;

	for (const char *p = base; *p != '\0'; p++) {
		if (*p == '/' && n > 0 && out[n - 1] == '/')
			continue;
		if (n == 0 && *p != '/')
			out[n++] = '/';
		out[n++] = *p;
	}
	while (n > 0 && out[n - 1] == '/')
		n--;
	if (n >= cap)
		return -1;
	out[n] = '\0';
	memcpy(base, out, n + 1);
	return 0;
}

/* A listen address must be numeric (nofussd never resolves names); key
 * names the setting in the message. */
static int check_listen(const char *key, const char *listen, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc;

	if (listen[0] == '\0' || strcmp(listen, "*") == 0)
		return 0;
	rc = getaddrinfo(listen, NULL, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: \"%s\" is not an IPv4 or IPv6 address", key, listen);
		return -1;
	}
	freeaddrinfo(res);
	return 0;
}

/* The store setting: off, or a URL of a backend the store knows; the
 * default follows data_dir. The URL itself is checked by nf_store_open. */
static int finish_store(struct nf_config *cfg, char *err, size_t errlen)
{
	static const char *const schemes[] = {"sqlite://", "postgresql://", "postgres://"};

	if (!cfg->store_set || cfg->store[0] == '\0') {
		if (nf_store_default_url(cfg->data_dir, cfg->store, sizeof cfg->store) != 0) {
			snprintf(err, errlen, "data-dir: path too long for the store's URL");
			return -1;
		}
		return 0;
	}
	if (strcasecmp(cfg->store, "off") == 0 || strcasecmp(cfg->store, "none") == 0) {
		cfg->store[0] = '\0';
		return 0;
	}
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
		if (strncmp(cfg->store, schemes[i], strlen(schemes[i])) == 0)
			return 0;
	/* Only what comes before the first ':' is shown: a URL may hold a password. */
	snprintf(err, errlen, "store: \"%.*s:...\" is not sqlite:///PATH, postgresql://..., "
	         "off or none", (int)strcspn(cfg->store, ":"), cfg->store);
	return -1;
}

int nf_config_finish(struct nf_config *cfg, char *err, size_t errlen)
{
	if (normalise_base(cfg->base, sizeof cfg->base) != 0) {
		snprintf(err, errlen, "base: longer than %zu bytes", sizeof cfg->base - 1);
		return -1;
	}
	if (check_listen("listen", cfg->listen, err, errlen) != 0)
		return -1;
	if (cfg->admin_listen[0] == '\0' || strcmp(cfg->admin_listen, "*") == 0) {
		snprintf(err, errlen, "admin-listen: name one address (127.0.0.1, ::1, 0.0.0.0, ::)");
		return -1;
	}
	if (check_listen("admin-listen", cfg->admin_listen, err, errlen) != 0)
		return -1;
	if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
		snprintf(err, errlen, "tls-cert and tls-key: give both (TLS) or neither (plain HTTP)");
		return -1;
	}
	if (cfg->auth_checks && cfg->credentials[0] == '\0') {
		snprintf(err, errlen, "auth-checks: only with credentials");
		return -1;
	}
	if ((cfg->admin_tls_cert[0] == '\0') != (cfg->admin_tls_key[0] == '\0')) {
		snprintf(err, errlen, "admin-tls-cert and admin-tls-key: give both (TLS on the admin "
		         "listener) or neither (plain HTTP)");
		return -1;
	}
	if (cfg->admin_tls_cert[0] != '\0' && cfg->admin_token_file[0] == '\0') {
		snprintf(err, errlen, "admin-tls-cert: only with admin-token-file (the admin listener)");
		return -1;
	}
	if (cfg->tls_priorities[0] != '\0' && cfg->tls_cert[0] == '\0' &&
	    cfg->admin_tls_cert[0] == '\0') {
		snprintf(err, errlen, "tls-priorities: only with tls-cert or admin-tls-cert");
		return -1;
	}
	if (cfg->rules_path[0] == '\0' &&
	    (size_t)snprintf(cfg->rules_path, sizeof cfg->rules_path, "%s/versions.json",
	                     cfg->data_dir) >= sizeof cfg->rules_path)
		goto too_long;
	if (cfg->public_dir[0] == '\0' &&
	    (size_t)snprintf(cfg->public_dir, sizeof cfg->public_dir, "%s/public", cfg->data_dir) >=
	        sizeof cfg->public_dir)
		goto too_long;
	return finish_store(cfg, err, errlen);
too_long:
	snprintf(err, errlen, "data-dir: path too long");
	return -1;
}
