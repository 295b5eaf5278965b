/*
 * creds.c - device credentials (credentials = FILE): who may download
 * images, and with auth-checks = yes who may check, at all.
 *
 * A credential is a name and a secret. A device sends them as HTTP Basic
 * (user NAME, password SECRET: what the ESP8266 and ESP32 updaters send
 * after http.setAuthorization) or as a bearer token "NAME:SECRET". The name
 * is a device's (one credential per device, revoked alone) or a fleet's
 * (one shared by many). The file keeps only a salted hash of each secret:
 *
 *     NAME:SALT:HASH     SALT 16 random bytes, HASH = SHA-256(SALT || SECRET), hex
 *
 * (nofussd --hash-credential NAME makes such a line). Secrets are meant to
 * be random (nofussd makes 128-bit ones), so one SHA-256 is enough: a slow
 * password hash would cost every request its time on the loop thread,
 * which must never wait. The file is read with the rules, on the builder
 * thread, into a table sorted by name that the loop only reads; a bad
 * file fails the reload and the table in use stays.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "nofussd.h"

#define SALT_LEN 16
#define HASH_LEN 32

struct cred {
	char name[NF_MAX_CRED_NAME + 1];
	unsigned char salt[SALT_LEN];
	unsigned char hash[HASH_LEN];
};

struct nf_creds {
	struct cred *v; /* sorted by name */
	size_t n;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct cred *)a)->name, ((const struct cred *)b)->name);
}

static bool name_ok(const char *s, size_t len)
{
	if (len == 0 || len > NF_MAX_CRED_NAME)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == ':')
			return false;
	return true;
}

/* One "NAME:SALT:HASH" line (no newline) into c. 0, or -1 with err. */
static int parse_line(const char *line, size_t len, struct cred *c, char *err, size_t errlen)
{
	const char *a = memchr(line, ':', len), *b;
	size_t name_len;

	if (a == NULL || (b = memchr(a + 1, ':', len - (size_t)(a + 1 - line))) == NULL) {
		nf_errf(err, errlen, "not NAME:SALT:HASH (nofussd --hash-credential makes one)");
		return -1;
	}
	name_len = (size_t)(a - line);
	if (!name_ok(line, name_len)) {
		nf_errf(err, errlen, "the name must be 1 to %d printable characters, no ':' or space",
		        NF_MAX_CRED_NAME);
		return -1;
	}
	if ((size_t)(b - a - 1) != 2 * SALT_LEN || nf_hex_decode(a + 1, c->salt, SALT_LEN) != 0 ||
	    (size_t)(line + len - b - 1) != 2 * HASH_LEN ||
	    nf_hex_decode(b + 1, c->hash, HASH_LEN) != 0) {
		nf_errf(err, errlen, "the salt must be %d and the hash %d hex digits", 2 * SALT_LEN,
		        2 * HASH_LEN);
		return -1;
	}
	memcpy(c->name, line, name_len);
	c->name[name_len] = '\0';
	return 0;
}

struct nf_creds *nf_creds_parse(const char *text, size_t len, const char *name, char *err,
                                size_t errlen)
{
	struct nf_creds *cs = calloc(1, sizeof *cs);
	size_t cap = 0, lineno = 0;
	char why[NF_ERR_LEN];

	if (cs == NULL)
		goto oom;
	for (size_t at = 0; at < len;) {
		const char *line = text + at, *nl = memchr(line, '\n', len - at);
		size_t n = nl != NULL ? (size_t)(nl - line) : len - at;

		at += n + (nl != NULL);
		lineno++;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		while (n > 0 && (line[0] == ' ' || line[0] == '\t'))
			line++, n--;
		while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		if (n == 0 || line[0] == '#')
			continue;
		if (cs->n == NF_MAX_CREDENTIALS) {
			nf_errf(err, errlen, "%s: more than %d credentials", name, NF_MAX_CREDENTIALS);
			goto fail;
		}
		if (cs->n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct cred *v = realloc(cs->v, ncap * sizeof *v);
			if (v == NULL)
				goto oom;
			cs->v = v;
			cap = ncap;
		}
		if (parse_line(line, n, &cs->v[cs->n], why, sizeof why) != 0) {
			nf_errf(err, errlen, "%s:%zu: %s", name, lineno, why);
			goto fail;
		}
		cs->n++;
	}
	if (cs->n > 0)
		qsort(cs->v, cs->n, sizeof *cs->v, by_name);
	for (size_t i = 1; i < cs->n; i++)
		if (strcmp(cs->v[i - 1].name, cs->v[i].name) == 0) {
			nf_errf(err, errlen, "%s: the name \"%s\" is given twice", name, cs->v[i].name);
			goto fail;
		}
	return cs;
oom:
	nf_errf(err, errlen, "%s: out of memory", name);
fail:
	nf_creds_free(cs);
	return NULL;
}

struct nf_creds *nf_creds_load(const char *path, char *err, size_t errlen)
{
	struct nf_creds *cs = NULL;
	struct stat st;
	char *text = NULL;
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		nf_errf(err, errlen, "credentials %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > NF_MAX_CREDS_FILE) {
		nf_errf(err, errlen, "credentials %s: not a regular file of at most %d bytes", path,
		        NF_MAX_CREDS_FILE);
		goto done;
	}
	text = malloc((size_t)st.st_size + 1);
	if (text != NULL)
		n = read(fd, text, (size_t)st.st_size);
	if (n != st.st_size) {
		nf_errf(err, errlen, "credentials %s: cannot be read", path);
		goto done;
	}
	cs = nf_creds_parse(text, (size_t)n, path, err, errlen);
done:
	free(text);
	close(fd);
	return cs;
}

void nf_creds_free(struct nf_creds *cs)
{
	if (cs == NULL)
		return;
	OPENSSL_cleanse(cs->v, cs->n * sizeof *cs->v);
	free(cs->v);
	free(cs);
}

size_t nf_creds_count(const struct nf_creds *cs)
{
	return cs->n;
}

/* The value of one base64 character, -1 for anything else. */
static int b64(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard base64 (padding optional) into out[cap-1], NUL-terminated.
 * Returns the decoded length, or -1 when malformed or too long. */
static long b64_decode(const char *in, size_t len, char *out, size_t cap)
{
	size_t n = 0, bits = 0;
	unsigned acc = 0;

	while (len > 0 && in[len - 1] == '=')
		len--;
	for (size_t i = 0; i < len; i++) {
		int v = b64(in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= cap)
				return -1;
			out[n++] = (char)((acc >> bits) & 0xFF);
		}
	}
	out[n] = '\0';
	return (long)n;
}

/* SHA-256(salt || secret) into out. */
static bool salted_hash(const unsigned char salt[SALT_LEN], const char *secret, size_t len,
                        unsigned char out[HASH_LEN])
{
	unsigned int n = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	          EVP_DigestUpdate(md, salt, SALT_LEN) == 1 &&
	          EVP_DigestUpdate(md, secret, len) == 1 && EVP_DigestFinal_ex(md, out, &n) == 1 &&
	          n == HASH_LEN;

	EVP_MD_CTX_free(md);
	return ok;
}

static bool secret_matches(const struct cred *c, const char *secret, size_t len)
{
	unsigned char got[HASH_LEN];

	return salted_hash(c->salt, secret, len, got) && CRYPTO_memcmp(got, c->hash, HASH_LEN) == 0;
}

enum nf_auth nf_creds_check(const struct nf_creds *cs, const char *authorization, char *who,
                            size_t wholen)
{
	char plain[NF_MAX_AUTH + 1];
	const char *colon;
	struct cred key;
	const struct cred *c;
	size_t len;

	nf_errf(who, wholen, "%s", "");
	if (authorization == NULL || authorization[0] == '\0')
		return NF_AUTH_MISSING;
	len = strlen(authorization);
	if (len > NF_MAX_AUTH)
		return NF_AUTH_MALFORMED;
	if (strncasecmp(authorization, "Basic ", 6) == 0) {
		if (b64_decode(authorization + 6, len - 6, plain, sizeof plain) < 0)
			return NF_AUTH_MALFORMED;
	} else if (strncasecmp(authorization, "Bearer ", 7) == 0) {
		memcpy(plain, authorization + 7, len - 7 + 1);
	} else {
		return NF_AUTH_MALFORMED;
	}
	colon = strchr(plain, ':');
	if (colon == NULL || !name_ok(plain, (size_t)(colon - plain)))
		return NF_AUTH_MALFORMED;
	memcpy(key.name, plain, (size_t)(colon - plain));
	key.name[colon - plain] = '\0';
	nf_errf(who, wholen, "%s", key.name);
	c = cs->n > 0 ? bsearch(&key, cs->v, cs->n, sizeof *cs->v, by_name) : NULL;
	if (c == NULL)
		return NF_AUTH_UNKNOWN;
	return secret_matches(c, colon + 1, strlen(colon + 1)) ? NF_AUTH_OK : NF_AUTH_WRONG;
}

const char *nf_auth_text(enum nf_auth a)
{
	switch (a) {
	case NF_AUTH_OK: return "accepted";
	case NF_AUTH_MISSING: return "no credential";
	case NF_AUTH_MALFORMED: return "malformed Authorization header";
	case NF_AUTH_UNKNOWN: return "unknown name";
	case NF_AUTH_WRONG: return "wrong secret";
	}
	return "?";
}

int nf_creds_hash_line(const char *name, const char *secret, char *out, size_t cap, char *err,
                       size_t errlen)
{
	struct cred c;
	char salt[2 * SALT_LEN + 1], hash[2 * HASH_LEN + 1];

	if (!name_ok(name, strlen(name))) {
		nf_errf(err, errlen, "the name must be 1 to %d printable characters, no ':' or space",
		        NF_MAX_CRED_NAME);
		return -1;
	}
	if (secret[0] == '\0' || strlen(secret) > NF_MAX_AUTH / 2) {
		nf_errf(err, errlen, "the secret must be 1 to %d bytes", NF_MAX_AUTH / 2);
		return -1;
	}
	if (RAND_bytes(c.salt, SALT_LEN) != 1 || !salted_hash(c.salt, secret, strlen(secret), c.hash)) {
		nf_errf(err, errlen, "no random salt or no SHA-256 (OpenSSL failed)");
		return -1;
	}
	nf_hex_encode(c.salt, SALT_LEN, salt);
	nf_hex_encode(c.hash, HASH_LEN, hash);
	return (size_t)snprintf(out, cap, "%s:%s:%s", name, salt, hash) < cap ? 0 : -1;
}
