/*
 * config.c - platformio.ini -> struct nf_push_env, for `nofuss push`.
 *
 * inih does the INI syntax; a line reader of our own feeds it, which lets us
 * (1) count lines, so every message names FILE:LINE, (2) strip inline
 * comments the way PlatformIO (Python configparser with inline prefixes ';'
 * and '#') does - inih itself only knows ';' - and (3) notice lines longer
 * than inih's line buffer instead of letting inih split them, and (4) track
 * the current section ourselves, since inih cuts section names at 49 bytes.
 *
 * Problems that concern one environment (a bad --port, a topic given twice)
 * are kept in that environment, so the others stay usable; problems with the
 * file (syntax, duplicate sections) fail the whole parse, as in PlatformIO.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <ini.h>

#include "push.h"

#define TOKEN_MAX         512u /* one upload_flags word */
#define BUILD_DIR_DEFAULT ".pio/build"

enum section_kind { SEC_NONE, SEC_BASE, SEC_ENV, SEC_PLATFORMIO, SEC_OTHER };
enum pending { PENDING_NONE, PENDING_AUTH, PENDING_PORT };

/* Parsing state of one environment (or of [env]). */
struct env_state {
	bool topic_set, flags_set, platform_set, esp32, fs_set;
	enum pending pending; /* the flag whose value comes next */
	unsigned pending_line;
};

struct parser {
	struct nf_push_config *cfg;
	const char *origin;
	const char *p, *end;     /* the text not yet read */
	unsigned line;           /* the line the reader returned last */
	bool truncated;          /* ... and it was longer than inih's buffer */
	enum section_kind kind;  /* the section that line is in */
	size_t cur;              /* with SEC_ENV: its index */
	struct nf_push_env base; /* [env] */
	struct env_state base_st;
	struct env_state st[NF_PUSH_MAX_ENVS];
	char build_dir[NF_PUSH_MAX_PATH];
	unsigned error_line; /* the line of cfg->error, 0 for none */
};

static void set_error(struct parser *ps, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_problem(struct parser *ps, struct nf_push_env *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The file's error: the first one wins. */
static void set_error(struct parser *ps, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->error_line != 0)
		return;
	ps->error_line = line;
	n = snprintf(ps->cfg->error, sizeof ps->cfg->error, "%s:%u: ", ps->origin, line);
	if (n < 0 || (size_t)n >= sizeof ps->cfg->error)
		return;
	va_start(ap, fmt);
	vsnprintf(ps->cfg->error + n, sizeof ps->cfg->error - (size_t)n, fmt, ap);
	va_end(ap);
}

/* One environment's problem, on the current line: the first one wins. */
static void set_problem(struct parser *ps, struct nf_push_env *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (e->problem[0] != '\0')
		return;
	n = snprintf(e->problem, sizeof e->problem, "%s:%u: ", ps->origin, ps->line);
	if (n < 0 || (size_t)n >= sizeof e->problem)
		return;
	va_start(ap, fmt);
	vsnprintf(e->problem + n, sizeof e->problem - (size_t)n, fmt, ap);
	va_end(ap);
}

static bool copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

/* Where an inline comment starts in line[0..n): ';' or '#' at the start or
 * after whitespace (configparser's rule), else n. */
static size_t comment_start(const char *line, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((line[i] == ';' || line[i] == '#') &&
		    (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t'))
			return i;
	}
	return n;
}

static struct nf_push_env *find_env(struct nf_push_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->count; i++)
		if (strcmp(cfg->env[i].name, name) == 0)
			return &cfg->env[i];
	return NULL;
}

/* A section header line: note which section the following lines are in,
 * and register [env:NAME]. hdr points after the '['. */
static void section_header(struct parser *ps, const char *hdr)
{
	const char *close = strchr(hdr, ']');
	size_t n;
	struct nf_push_env *e;

	ps->kind = SEC_OTHER;
	if (close == NULL)
		return; /* inih reports it */
	n = (size_t)(close - hdr);
	if (n == 3 && memcmp(hdr, "env", 3) == 0) {
		ps->kind = SEC_BASE;
		return;
	}
	if (n == 10 && memcmp(hdr, "platformio", 10) == 0) {
		ps->kind = SEC_PLATFORMIO;
		return;
	}
	if (n < 4 || memcmp(hdr, "env:", 4) != 0)
		return;
	hdr += 4;
	n -= 4;
	if (n == 0) {
		set_error(ps, ps->line, "[env:] has no environment name");
		return;
	}
	if (n >= NF_PUSH_MAX_NAME) {
		set_error(ps, ps->line, "environment name longer than %u characters",
		          NF_PUSH_MAX_NAME - 1);
		return;
	}
	char name[NF_PUSH_MAX_NAME];
	memcpy(name, hdr, n);
	name[n] = '\0';
	e = find_env(ps->cfg, name);
	if (e != NULL) {
		set_error(ps, ps->line, "[env:%s] appears twice (first on line %u)", name, e->line);
		return;
	}
	if (ps->cfg->count >= NF_PUSH_MAX_ENVS) {
		set_error(ps, ps->line, "more than %u environments", NF_PUSH_MAX_ENVS);
		return;
	}
	ps->cur = ps->cfg->count++;
	e = &ps->cfg->env[ps->cur];
	memset(e, 0, sizeof *e);
	memcpy(e->name, name, n + 1);
	e->line = ps->line;
	ps->kind = SEC_ENV;
}

/* inih's line reader (fgets' contract): the next line, comment-stripped,
 * at most num - 1 bytes; NULL at the end. */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *ps = stream;
	const char *nl, *s;
	size_t len, keep, cap;

	if (ps->p >= ps->end || num < 2)
		return NULL;
	nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
	len = nl != NULL ? (size_t)(nl - ps->p) : (size_t)(ps->end - ps->p);
	keep = comment_start(ps->p, len);
	cap = (size_t)num - 1;
	ps->truncated = keep > cap;
	if (ps->truncated)
		keep = cap;
	memcpy(str, ps->p, keep);
	str[keep] = '\0';
	ps->p += len + (nl != NULL ? 1 : 0);
	ps->line++;

	for (s = str; *s == ' ' || *s == '\t' || *s == '\r'; s++)
		;
	if (*s == '[')
		section_header(ps, s + 1);
	return str;
}

static bool key_is(const char *name, const char *want)
{
	return strcasecmp(name, want) == 0;
}

static void take_topic(struct parser *ps, struct nf_push_env *e, struct env_state *st,
                       const char *value)
{
	if (st->topic_set && e->topic[0] != '\0') {
		set_problem(ps, e,
		            "the topic is given twice (topic and custom_topic, or an indented "
		            "second line)");
		return;
	}
	st->topic_set = true;
	if (!copy_str(e->topic, sizeof e->topic, value)) {
		set_problem(ps, e, "topic longer than %u characters", NF_PUSH_MAX_TOPIC - 1);
		e->topic[0] = '\0';
		return;
	}
	if (strpbrk(e->topic, "+#") != NULL)
		set_problem(ps, e, "topic '%s' contains an MQTT wildcard (+ or #)", e->topic);
}

static void take_port(struct parser *ps, struct nf_push_env *e, const char *text)
{
	unsigned long v = 0;
	const char *q = text;

	if (*q == '\0')
		goto bad;
	for (; *q != '\0'; q++) {
		if (*q < '0' || *q > '9')
			goto bad;
		v = v * 10 + (unsigned long)(*q - '0');
		if (v > 65535)
			goto bad;
	}
	if (v == 0)
		goto bad;
	e->port = (unsigned)v;
	e->port_given = true;
	return;
bad:
	set_problem(ps, e, "upload_flags: --port '%s' is not a port (1 to 65535)", text);
}

static void take_auth(struct parser *ps, struct nf_push_env *e, const char *text)
{
	if (!copy_str(e->auth, sizeof e->auth, text)) {
		set_problem(ps, e, "upload_flags: --auth longer than %u characters",
		            NF_PUSH_MAX_AUTH - 1);
		return;
	}
	e->has_auth = e->auth[0] != '\0'; /* espota treats "--auth=" as none */
}

/* One upload_flags word. */
static void take_flag(struct parser *ps, struct nf_push_env *e, struct env_state *st,
                      const char *tok)
{
	enum pending was = st->pending;

	st->pending = PENDING_NONE;
	if (was == PENDING_AUTH)
		take_auth(ps, e, tok);
	else if (was == PENDING_PORT)
		take_port(ps, e, tok);
	else if (strcmp(tok, "--auth") == 0 || strcmp(tok, "-a") == 0)
		st->pending = PENDING_AUTH;
	else if (strncmp(tok, "--auth=", 7) == 0)
		take_auth(ps, e, tok + 7);
	else if (strcmp(tok, "--port") == 0 || strcmp(tok, "-p") == 0)
		st->pending = PENDING_PORT;
	else if (strncmp(tok, "--port=", 7) == 0)
		take_port(ps, e, tok + 7);
	/* anything else is espota's business (--progress, --debug, ...) */
	if (st->pending != PENDING_NONE)
		st->pending_line = ps->line;
}

/* An upload_flags value (or one of its lines): whitespace-separated words,
 * with '...' and "..." quoting as a shell would. */
static void take_flags(struct parser *ps, struct nf_push_env *e, struct env_state *st,
                       const char *value)
{
	char tok[TOKEN_MAX];
	const char *q = value;

	st->flags_set = true;
	for (;;) {
		size_t n = 0;
		char quote = '\0';

		while (*q == ' ' || *q == '\t' || *q == '\r')
			q++;
		if (*q == '\0')
			return;
		for (; *q != '\0' && (quote != '\0' || (*q != ' ' && *q != '\t' && *q != '\r'));
		     q++) {
			if (quote == '\0' && (*q == '\'' || *q == '"')) {
				quote = *q;
				continue;
			}
			if (quote != '\0' && *q == quote) {
				quote = '\0';
				continue;
			}
			if (n + 1 >= sizeof tok) {
				set_problem(ps, e, "upload_flags: a word longer than %u characters",
				            TOKEN_MAX - 1);
				return;
			}
			tok[n++] = *q;
		}
		if (quote != '\0') {
			set_problem(ps, e, "upload_flags: unterminated %c quote", quote);
			return;
		}
		tok[n] = '\0';
		take_flag(ps, e, st, tok);
	}
}

/* inih's handler: one key = value (or one continuation line). */
static int on_value(void *user, const char *section, const char *name, const char *value)
{
	struct parser *ps = user;
	struct nf_push_env *e;
	struct env_state *st;
	bool wanted;

	(void)section; /* inih cuts it at 49 bytes: ps->kind is exact */
	if (ps->kind == SEC_PLATFORMIO && key_is(name, "build_dir")) {
		if (ps->truncated || !copy_str(ps->build_dir, sizeof ps->build_dir, value))
			set_error(ps, ps->line, "build_dir longer than %u characters",
			          NF_PUSH_MAX_PATH - 1);
		return 1;
	}
	if (ps->kind == SEC_BASE) {
		e = &ps->base;
		st = &ps->base_st;
	} else if (ps->kind == SEC_ENV) {
		e = &ps->cfg->env[ps->cur];
		st = &ps->st[ps->cur];
	} else {
		return 1;
	}
	wanted = key_is(name, "topic") || key_is(name, "custom_topic") ||
	         key_is(name, "upload_flags") || key_is(name, "platform") ||
	         key_is(name, "board_build.filesystem");
	if (!wanted)
		return 1;
	if (ps->truncated) {
		set_problem(ps, e, "line longer than inih's limit; %s cannot be read", name);
		return 1;
	}
	if (strstr(value, "${") != NULL && !key_is(name, "platform")) {
		set_problem(
		    ps, e, "%s uses ${...} interpolation, which nofuss push does not expand", name);
		return 1;
	}
	if (key_is(name, "topic") || key_is(name, "custom_topic")) {
		take_topic(ps, e, st, value);
	} else if (key_is(name, "upload_flags")) {
		take_flags(ps, e, st, value);
	} else if (key_is(name, "platform")) {
		st->platform_set = true;
		st->esp32 = strstr(value, "espressif32") != NULL;
	} else {
		st->fs_set = true;
		if (!copy_str(e->filesystem, sizeof e->filesystem, value))
			set_problem(ps, e, "board_build.filesystem '%s' is not littlefs or spiffs",
			            value);
		for (char *c = e->filesystem; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	return 1;
}

/* dst = a/b (or just b when a is empty or b is absolute). */
static bool join(char *dst, size_t size, const char *a, const char *b)
{
	int n;

	if (a[0] == '\0' || b[0] == '/')
		n = snprintf(dst, size, "%s", b);
	else
		n = snprintf(dst, size, "%s%s%s", a, a[strlen(a) - 1] == '/' ? "" : "/", b);
	return n >= 0 && (size_t)n < size;
}

/* [env] defaults, the default port, the image paths. */
static void finish_env(struct parser *ps, const char *project_dir, size_t i)
{
	struct nf_push_env *e = &ps->cfg->env[i];
	struct env_state *st = &ps->st[i];
	char build[NF_PUSH_MAX_PATH], dir[NF_PUSH_MAX_PATH];
	int n1, n2, n3;

	if (st->pending != PENDING_NONE) {
		ps->line = st->pending_line;
		set_problem(ps, e, "upload_flags: %s needs a value",
		            st->pending == PENDING_AUTH ? "--auth" : "--port");
	}
	if (!st->topic_set)
		memcpy(e->topic, ps->base.topic, sizeof e->topic);
	if (!st->flags_set) {
		memcpy(e->auth, ps->base.auth, sizeof e->auth);
		e->has_auth = ps->base.has_auth;
		e->port = ps->base.port;
		e->port_given = ps->base.port_given;
	}
	if (!st->fs_set)
		memcpy(e->filesystem, ps->base.filesystem, sizeof e->filesystem);
	if (e->problem[0] == '\0' && ps->base.problem[0] != '\0')
		memcpy(e->problem, ps->base.problem, sizeof e->problem);
	if (!e->port_given)
		e->port = (st->platform_set ? st->esp32 : ps->base_st.esp32) ? NF_PUSH_PORT_ESP32
		                                                             : NF_PUSH_PORT_ESP8266;

	if (!join(build, sizeof build, project_dir,
	          ps->build_dir[0] != '\0' ? ps->build_dir : BUILD_DIR_DEFAULT) ||
	    !join(dir, sizeof dir, build, e->name)) {
		ps->line = e->line;
		set_problem(ps, e, "build path longer than %u characters", NF_PUSH_MAX_PATH - 1);
		return;
	}
	n1 = snprintf(e->firmware, sizeof e->firmware, "%s/firmware.bin", dir);
	n2 = snprintf(e->littlefs, sizeof e->littlefs, "%s/littlefs.bin", dir);
	n3 = snprintf(e->spiffs, sizeof e->spiffs, "%s/spiffs.bin", dir);
	if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n2 >= sizeof e->littlefs ||
	    (size_t)n1 >= sizeof e->firmware || (size_t)n3 >= sizeof e->spiffs) {
		ps->line = e->line;
		set_problem(ps, e, "build path longer than %u characters", NF_PUSH_MAX_PATH - 1);
	}
}

int nf_push_config_parse_string(const char *text, size_t len, const char *origin,
                                const char *project_dir, struct nf_push_config *cfg)
{
	struct parser *ps;
	int rc = -1, irc;

	cfg->count = 0;
	cfg->error[0] = '\0';
	ps = calloc(1, sizeof *ps);
	if (ps == NULL) {
		snprintf(cfg->error, sizeof cfg->error, "%s: out of memory", origin);
		return -1;
	}
	ps->cfg = cfg;
	ps->origin = origin;
	ps->p = text;
	ps->end = text + len;
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		ps->p += 3; /* a UTF-8 byte order mark */

	irc = ini_parse_stream(read_line, ps, on_value, ps);
	if (irc > 0)
		set_error(ps, (unsigned)irc,
		          "syntax error (expected '[section]', 'key = value' or a comment)");
	else if (irc < 0)
		set_error(ps, ps->line, "out of memory");
	if (ps->error_line != 0)
		goto done;
	for (size_t i = 0; i < cfg->count; i++)
		finish_env(ps, project_dir, i);
	rc = 0;
done:
	if (rc != 0)
		cfg->count = 0;
	free(ps);
	return rc;
}

int nf_push_config_read(const char *path, struct nf_push_config *cfg)
{
	char dir[NF_PUSH_MAX_PATH];
	const char *slash;
	char *text = NULL;
	FILE *f = NULL;
	struct stat sb;
	size_t got;
	int rc = -1;

	cfg->count = 0;
	cfg->error[0] = '\0';
	slash = strrchr(path, '/');
	if (slash == NULL) {
		dir[0] = '\0';
	} else if ((size_t)(slash - path) + 2 > sizeof dir) {
		snprintf(cfg->error, sizeof cfg->error, "%s: path too long", path);
		goto done;
	} else {
		size_t n = slash == path ? 1 : (size_t)(slash - path);
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	f = fopen(path, "rb");
	if (f == NULL || fstat(fileno(f), &sb) != 0) {
		snprintf(cfg->error, sizeof cfg->error, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(sb.st_mode) || (unsigned long long)sb.st_size > NF_PUSH_MAX_FILE) {
		snprintf(cfg->error, sizeof cfg->error,
		         "%s: not a regular file of at most %u bytes", path, NF_PUSH_MAX_FILE);
		goto done;
	}
	text = malloc((size_t)sb.st_size + 1);
	if (text == NULL) {
		snprintf(cfg->error, sizeof cfg->error, "%s: out of memory", path);
		goto done;
	}
	got = fread(text, 1, (size_t)sb.st_size, f);
	if (ferror(f)) {
		snprintf(cfg->error, sizeof cfg->error, "%s: read error", path);
		goto done;
	}
	rc = nf_push_config_parse_string(text, got, path, dir, cfg);
done:
	free(text);
	if (f != NULL)
		fclose(f);
	return rc;
}

const struct nf_push_env *nf_push_config_find(const struct nf_push_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->count; i++)
		if (strcmp(cfg->env[i].name, name) == 0)
			return &cfg->env[i];
	return NULL;
}
