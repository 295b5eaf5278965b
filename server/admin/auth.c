/*
 * auth.c - the admin listener's bearer tokens: read from the token file,
 * kept only as SHA-256 hashes, compared in constant time.
 *
 * The file holds secrets, so it must not be readable or writable by others
 * (mode & 007 == 0): a file that is, or that is missing, stops nofussd at
 * start with a message saying what to do. It is re-read when it changes
 * (stat checked at most once a second, on the admin threads, never the
 * loop's), so revoking a token is editing the file; a file that becomes bad
 * keeps the tokens last loaded and is said once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "admin.h"
#include "common.h"
#include "nofussd.h"

static void hash_token(const char *token, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	if (EVP_Digest(token, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
		memset(out, 0, 32); /* never matches: no token hashes to zeros */
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("_.@-", c) != NULL;
}

/* Splits the next blank-separated field of line off at *p. */
static const char *field(char **p)
{
	char *s = *p + strspn(*p, " \t");
	char *e = s + strcspn(s, " \t");

	if (*e != '\0')
		*e++ = '\0';
	*p = e;
	return s;
}

/* One line (NUL-terminated, no newline) into tok. 1 a token, 0 nothing, -1 err. */
static int parse_line(char *line, unsigned lineno, struct nf_admin_token *tok, char *err,
                      size_t errlen)
{
	char *p = line;
	const char *token = field(&p), *role = field(&p), *name = field(&p);
	size_t len = strlen(token);

	if (token[0] == '\0' || token[0] == '#')
		return 0;
	if (*field(&p) != '\0')
		return nf_errf(err, errlen, "%u: more than three fields (TOKEN [ROLE [NAME]])",
		               lineno),
		       -1;
	if (len < NF_ADMIN_MIN_TOKEN || len > NF_ADMIN_MAX_TOKEN)
		return nf_errf(err, errlen,
		               "%u: a token must have %d to %d characters (this one has %zu)",
		               lineno, NF_ADMIN_MIN_TOKEN, NF_ADMIN_MAX_TOKEN, len),
		       -1;
	for (const char *c = token; *c != '\0'; c++)
		if (*c < 0x21 || *c > 0x7e)
			return nf_errf(err, errlen, "%u: a token is printable ASCII without blanks",
			               lineno),
			       -1;
	if (role[0] == '\0' || strcmp(role, "admin") == 0)
		tok->role = NF_ROLE_ADMIN;
	else if (strcmp(role, "read") == 0)
		tok->role = NF_ROLE_READ;
	else
		return nf_errf(err, errlen, "%u: role \"%.32s\" is not admin or read", lineno,
		               role),
		       -1;
	if (name[0] == '\0') {
		snprintf(tok->name, sizeof tok->name, "line-%u", lineno);
	} else {
		if (strlen(name) >= sizeof tok->name)
			return nf_errf(err, errlen, "%u: a name has at most %zu characters", lineno,
			               sizeof tok->name - 1),
			       -1;
		for (const char *c = name; *c != '\0'; c++)
			if (!name_char(*c))
				return nf_errf(err, errlen,
				               "%u: a name is made of A-Z a-z 0-9 _ . @ -", lineno),
				       -1;
		snprintf(tok->name, sizeof tok->name, "%s", name);
	}
	hash_token(token, len, tok->hash);
	return 1;
}

int nf_admin_tokens_parse(const char *text, size_t len, struct nf_admin_token **list, size_t *count,
                          char *err, size_t errlen)
{
	struct nf_admin_token *out = calloc(NF_ADMIN_MAX_TOKENS, sizeof *out);
	char line[NF_ADMIN_MAX_TOKEN + 2 * NF_ADMIN_MAX_TOKEN_NAME + 16];
	size_t n = 0, pos = 0;
	unsigned lineno = 0;

	if (out == NULL)
		return nf_errf(err, errlen, "out of memory"), -1;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t l = (nl != NULL ? (size_t)(nl - text) : len) - pos;
		size_t next = nl != NULL ? (size_t)(nl - text) + 1 : len;
		int rc;

		lineno++;
		if (l > 0 && text[pos + l - 1] == '\r')
			l--;
		if (l >= sizeof line || memchr(text + pos, '\0', l) != NULL) {
			nf_errf(err, errlen, "%u: %s", lineno,
			        l >= sizeof line ? "line too long" : "a NUL byte");
			goto fail;
		}
		memcpy(line, text + pos, l);
		line[l] = '\0';
		pos = next;
		if (n == NF_ADMIN_MAX_TOKENS && line[strspn(line, " \t")] != '\0' &&
		    line[strspn(line, " \t")] != '#') {
			nf_errf(err, errlen, "%u: more than %d tokens", lineno,
			        NF_ADMIN_MAX_TOKENS);
			goto fail;
		}
		rc = parse_line(line, lineno, &out[n], err, errlen);
		if (rc < 0)
			goto fail;
		n += (size_t)rc;
	}
	if (n == 0) {
		nf_errf(err, errlen, "no token (one a line: TOKEN [admin|read [NAME]])");
		goto fail;
	}
	*list = out;
	*count = n;
	return 0;
fail:
	OPENSSL_cleanse(line, sizeof line);
	free(out);
	return -1;
}

/* Reads and parses path into a new list; fills st. 0 or -1 with err. */
static int read_tokens(const char *path, struct stat *st, struct nf_admin_token **list,
                       size_t *count, char *err, size_t errlen)
{
	char *text;
	char msg[NF_ERR_LEN];
	ssize_t got;
	int rc, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return nf_errf(err, errlen, "admin token file %s: %s", path, strerror(errno)), -1;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return nf_errf(err, errlen, "admin token file %s: not a regular file", path), -1;
	}
	if ((st->st_mode & 007) != 0) {
		close(fd);
		return nf_errf(err, errlen,
		               "admin token file %s: readable or writable by others (mode %04o); "
		               "chmod o= it (0600 or 0640)",
		               path, (unsigned)(st->st_mode & 07777)),
		       -1;
	}
	/* Group-readable is the 0640 setup; group-writable would let the
	 * group add admin tokens. */
	if ((st->st_mode & 020) != 0) {
		close(fd);
		return nf_errf(err, errlen,
		               "admin token file %s: writable by its group (mode %04o); chmod g-w it "
		               "(0600 or 0640)",
		               path, (unsigned)(st->st_mode & 07777)),
		       -1;
	}
	if (st->st_size > NF_ADMIN_MAX_TOKEN_FILE) {
		close(fd);
		return nf_errf(err, errlen, "admin token file %s: larger than %d bytes", path,
		               NF_ADMIN_MAX_TOKEN_FILE),
		       -1;
	}
	text = malloc((size_t)st->st_size + 1);
	if (text == NULL) {
		close(fd);
		return nf_errf(err, errlen, "out of memory"), -1;
	}
	got = read(fd, text, (size_t)st->st_size + 1);
	close(fd);
	if (got < 0 || got > st->st_size) {
		free(text);
		return nf_errf(err, errlen, "admin token file %s: %s", path,
		               got < 0 ? strerror(errno) : "changed while read"),
		       -1;
	}
	rc = nf_admin_tokens_parse(text, (size_t)got, list, count, msg, sizeof msg);
	OPENSSL_cleanse(text, (size_t)st->st_size + 1);
	free(text);
	if (rc != 0)
		nf_errf(err, errlen, "admin token file %s:%s", path, msg);
	return rc;
}

static void remember(struct nf_admin_tokens *t, const struct stat *st)
{
	t->dev = st->st_dev;
	t->ino = st->st_ino;
	t->size = st->st_size;
	t->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	t->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

int nf_admin_tokens_load(struct nf_admin_tokens *t, const char *path, char *err, size_t errlen)
{
	struct stat st;

	memset(t, 0, sizeof *t);
	if (strlen(path) >= sizeof t->path)
		return nf_errf(err, errlen, "admin token file: path too long"), -1;
	if (read_tokens(path, &st, &t->list, &t->count, err, errlen) != 0)
		return -1;
	snprintf(t->path, sizeof t->path, "%s", path);
	remember(t, &st);
	t->checked_ms = nf_clock_ms();
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void nf_admin_tokens_refresh(struct nf_admin_tokens *t)
{
	struct nf_admin_token *list, *old;
	struct stat st;
	size_t count;
	char err[NF_ERR_LEN];
	uint64_t now = nf_clock_ms();

	pthread_mutex_lock(&t->lock);
	if (now - t->checked_ms < NF_ADMIN_TOKEN_RECHECK_MS) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	t->checked_ms = now;
	if (stat(t->path, &st) == 0 && st.st_dev == t->dev && st.st_ino == t->ino &&
	    st.st_size == t->size &&
	    (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec == t->mtime_ns &&
	    (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec == t->ctime_ns) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	/* Changed (or gone): read it again. The lock is held so that one
	 * thread reads it; the others wait at most one small file read. */
	if (read_tokens(t->path, &st, &list, &count, err, sizeof err) != 0) {
		if (stat(t->path, &st) == 0)
			remember(t, &st); /* said once per change */
		else
			t->ino = 0;
		pthread_mutex_unlock(&t->lock);
		nf_log(NF_LOG_ERROR, "%s; keeping the %zu tokens loaded before", err, t->count);
		return;
	}
	old = t->list;
	t->list = list;
	t->count = count;
	remember(t, &st);
	pthread_mutex_unlock(&t->lock);
	nf_log(NF_LOG_INFO, "admin token file %s reloaded: %zu tokens", t->path, count);
	OPENSSL_cleanse(old, NF_ADMIN_MAX_TOKENS * sizeof *old);
	free(old);
}

/* The role of the token of SHA-256 hash, its name into name. */
static enum nf_admin_role lookup(struct nf_admin_tokens *t, const unsigned char hash[32], char *name)
{
	enum nf_admin_role role = NF_ROLE_NONE;

	pthread_mutex_lock(&t->lock);
	/* Every stored hash is compared, whichever matches: the time taken does
	 * not say which token (or how much of one) was right. */
	for (size_t i = 0; i < t->count; i++) {
		if (CRYPTO_memcmp(hash, t->list[i].hash, 32) == 0) {
			role = t->list[i].role;
			snprintf(name, NF_ADMIN_MAX_TOKEN_NAME, "%s", t->list[i].name);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return role;
}

enum nf_admin_role nf_admin_tokens_role_of(struct nf_admin_tokens *t, const unsigned char hash[32],
                                           char *name)
{
	return lookup(t, hash, name);
}

enum nf_admin_role nf_admin_tokens_check(struct nf_admin_tokens *t, const char *authorization,
                                         char *name, unsigned char *hash_out)
{
	unsigned char hash[32];
	enum nf_admin_role role;
	const char *token;
	size_t len;

	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
		return NF_ROLE_NONE;
	token = authorization + 7 + strspn(authorization + 7, " ");
	len = strcspn(token, " \t");
	if (len == 0 || len > NF_ADMIN_MAX_TOKEN || token[len + strspn(token + len, " \t")] != '\0')
		return NF_ROLE_NONE;
	hash_token(token, len, hash);
	role = lookup(t, hash, name);
	if (role != NF_ROLE_NONE && hash_out != NULL)
		memcpy(hash_out, hash, sizeof hash);
	OPENSSL_cleanse(hash, sizeof hash);
	return role;
}

void nf_admin_tokens_refused(struct nf_admin_tokens *t, const char *ip, const char *what)
{
	time_t now = time(NULL);
	bool say;

	pthread_mutex_lock(&t->lock);
	if (now != t->refused_second) {
		t->refused_second = now;
		t->refused_said = 0;
	}
	say = t->refused_said++ < NF_AUTH_LOG_PER_SEC;
	pthread_mutex_unlock(&t->lock);
	if (say)
		nf_log(NF_LOG_WARN, "admin: 401 to %s for %s: not a token of the token file", ip,
		       what);
}

void nf_admin_tokens_free(struct nf_admin_tokens *t)
{
	if (t->list != NULL) {
		OPENSSL_cleanse(t->list, NF_ADMIN_MAX_TOKENS * sizeof *t->list);
		free(t->list);
		pthread_mutex_destroy(&t->lock);
	}
	t->list = NULL;
	t->count = 0;
}
