/*
 * session.c - the web page's sessions (issue 13 item 2; docs/WEB.md
 * section 3): a bearer token exchanged once for a cookie, kept in the admin
 * listener's memory only.
 *
 * A session is a random id (32 bytes of OpenSSL's RAND_bytes, sent as 64
 * hex digits in the cookie), of which only the SHA-256 hash is kept,
 * compared in constant time; its CSRF token is HMAC-SHA256 of the id under
 * a key drawn at start, so a page reloaded in a new tab can ask for it
 * again (GET /api/v1/session) and nothing more is stored; the role and
 * the name of the token it was made from; and an expiry on the monotonic
 * clock. The table is bounded (NF_ADMIN_MAX_SESSIONS): a new session when it
 * is full takes the place of the one that expires first, and one token holds
 * at most NF_ADMIN_MAX_SESSIONS_PER_TOKEN (past it, its own oldest goes). A session keeps
 * the SHA-256 of the token it was made from, so that each request checks it
 * against the token file as it is now (nf_admin_session_role): revoking a
 * token signs its sessions out, and changing its role changes theirs
 * (docs/WEB.md).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "admin.h"
#include "common.h"

static void hash_id(const char *id, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	if (EVP_Digest(id, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
		memset(out, 0, 32); /* never matches: a free slot's hash is never compared */
}

/* 32 random bytes as 64 hex digits into out (NF_ADMIN_SESSION_ID_LEN + 1). */
static int random_id(char out[NF_ADMIN_SESSION_ID_LEN + 1])
{
	unsigned char raw[NF_ADMIN_SESSION_ID_LEN / 2];

	if (RAND_bytes(raw, sizeof raw) != 1)
		return -1;
	for (size_t i = 0; i < sizeof raw; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	OPENSSL_cleanse(raw, sizeof raw);
	return 0;
}

int nf_admin_sessions_init(struct nf_admin_sessions *s, unsigned lifetime_s)
{
	memset(s, 0, sizeof *s);
	s->lifetime_ms = (uint64_t)(lifetime_s > 0 ? lifetime_s : NF_ADMIN_SESSION_DEFAULT_S) * 1000;
	if (RAND_bytes(s->csrf_key, sizeof s->csrf_key) != 1)
		return -1;
	pthread_mutex_init(&s->lock, NULL);
	return 0;
}

void nf_admin_session_csrf(const struct nf_admin_sessions *s, const char *id,
                           char csrf[NF_ADMIN_SESSION_ID_LEN + 1])
{
	unsigned char mac[32];
	unsigned int n = 0;

	if (HMAC(EVP_sha256(), s->csrf_key, (int)sizeof s->csrf_key, (const unsigned char *)id,
	         strlen(id), mac, &n) == NULL || n != sizeof mac)
		memset(mac, 0, sizeof mac);
	for (size_t i = 0; i < sizeof mac; i++)
		snprintf(csrf + 2 * i, 3, "%02x", mac[i]);
}

void nf_admin_sessions_free(struct nf_admin_sessions *s)
{
	OPENSSL_cleanse(s->list, sizeof s->list);
	pthread_mutex_destroy(&s->lock);
}

/* A free or expired slot, else the live one that expires first. */
static struct nf_admin_session *free_slot(struct nf_admin_sessions *s, uint64_t now)
{
	struct nf_admin_session *slot = NULL;

	for (size_t i = 0; i < NF_ADMIN_MAX_SESSIONS; i++) {
		struct nf_admin_session *e = &s->list[i];
		if (e->role == NF_ROLE_NONE || e->expires_ms <= now)
			return e;
		if (slot == NULL || e->expires_ms < slot->expires_ms)
			slot = e;
	}
	return slot;
}

int nf_admin_session_create(struct nf_admin_sessions *s, enum nf_admin_role role, const char *name,
                            const unsigned char token_hash[32],
                            char id[NF_ADMIN_SESSION_ID_LEN + 1])
{
	uint64_t now = nf_clock_ms();
	struct nf_admin_session *slot, *own = NULL; /* own: the token's that expires first */
	size_t owned = 0;

	if (random_id(id) != 0)
		return -1;

	pthread_mutex_lock(&s->lock);
	/* A token at its share replaces its own session that expires first, so
	 * that signing in again and again with one token (a read token, say)
	 * never signs out the holders of others. Otherwise a free or expired
	 * slot, else the one that expires first. */
	for (size_t i = 0; i < NF_ADMIN_MAX_SESSIONS; i++) {
		struct nf_admin_session *e = &s->list[i];
		if (e->role == NF_ROLE_NONE || e->expires_ms <= now)
			continue;
		if (memcmp(e->token_hash, token_hash, sizeof e->token_hash) == 0) {
			owned++;
			if (own == NULL || e->expires_ms < own->expires_ms)
				own = e;
		}
	}
	slot = owned >= NF_ADMIN_MAX_SESSIONS_PER_TOKEN ? own : free_slot(s, now);
	hash_id(id, NF_ADMIN_SESSION_ID_LEN, slot->id_hash);
	slot->role = role;
	slot->expires_ms = now + s->lifetime_ms;
	snprintf(slot->name, sizeof slot->name, "%s", name);
	memcpy(slot->token_hash, token_hash, sizeof slot->token_hash);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int nf_admin_cookie_value(const char *header, size_t len, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name), pos = 0;
	int found = -1;

	/* "a=1; b=2": pairs split by ';', blanks around them skipped. A name
	 * given twice is refused: which one the browser meant is not known. */
	while (pos < len) {
		const char *p = header + pos;
		const char *semi = memchr(p, ';', len - pos);
		size_t plen = semi != NULL ? (size_t)(semi - p) : len - pos;
		size_t skip = 0;

		pos += plen + (semi != NULL ? 1 : 0);
		while (skip < plen && (p[skip] == ' ' || p[skip] == '\t'))
			skip++;
		p += skip;
		plen -= skip;
		while (plen > 0 && (p[plen - 1] == ' ' || p[plen - 1] == '\t'))
			plen--;
		if (plen <= nlen || memcmp(p, name, nlen) != 0 || p[nlen] != '=')
			continue;
		if (found >= 0)
			return -1;
		p += nlen + 1;
		plen -= nlen + 1;
		if (plen == 0 || plen >= cap)
			return -1;
		for (size_t i = 0; i < plen; i++)
			if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e || p[i] == '"' ||
			    p[i] == ',' || p[i] == '\\')
				return -1;
		memcpy(out, p, plen);
		out[plen] = '\0';
		found = (int)plen;
	}
	return found;
}

/* The slot of the session id (NUL-terminated), or NULL. Lock held. */
static struct nf_admin_session *find(struct nf_admin_sessions *s, const char *id, uint64_t now)
{
	unsigned char hash[32];
	struct nf_admin_session *hit = NULL;

	if (strlen(id) != NF_ADMIN_SESSION_ID_LEN)
		return NULL;
	hash_id(id, NF_ADMIN_SESSION_ID_LEN, hash);
	/* Every live slot is compared, whichever matches: the time does not
	 * say which session (or how much of an id) was right. */
	for (size_t i = 0; i < NF_ADMIN_MAX_SESSIONS; i++) {
		struct nf_admin_session *e = &s->list[i];
		if (e->role != NF_ROLE_NONE && CRYPTO_memcmp(hash, e->id_hash, sizeof hash) == 0)
			hit = e;
	}
	if (hit != NULL && hit->expires_ms <= now) {
		OPENSSL_cleanse(hit, sizeof *hit); /* expired: gone for good */
		hit = NULL;
	}
	return hit;
}

enum nf_admin_role nf_admin_session_check(struct nf_admin_sessions *s, const char *id,
                                          const char *csrf, bool *csrf_ok, char *name,
                                          int64_t *expires_in_ms, unsigned char *token_hash)
{
	enum nf_admin_role role = NF_ROLE_NONE;
	uint64_t now = nf_clock_ms();
	struct nf_admin_session *e;

	*csrf_ok = false;
	pthread_mutex_lock(&s->lock);
	e = find(s, id, now);
	if (e != NULL) {
		role = e->role;
		snprintf(name, NF_ADMIN_MAX_TOKEN_NAME, "%s", e->name);
		if (expires_in_ms != NULL)
			*expires_in_ms = (int64_t)(e->expires_ms - now);
		if (token_hash != NULL)
			memcpy(token_hash, e->token_hash, sizeof e->token_hash);
		if (csrf != NULL && strlen(csrf) == NF_ADMIN_SESSION_ID_LEN) {
			char want[NF_ADMIN_SESSION_ID_LEN + 1];
			nf_admin_session_csrf(s, id, want);
			*csrf_ok = CRYPTO_memcmp(want, csrf, NF_ADMIN_SESSION_ID_LEN) == 0;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return role;
}

bool nf_admin_session_end(struct nf_admin_sessions *s, const char *id)
{
	struct nf_admin_session *e;

	pthread_mutex_lock(&s->lock);
	e = find(s, id, nf_clock_ms());
	if (e != NULL)
		OPENSSL_cleanse(e, sizeof *e);
	pthread_mutex_unlock(&s->lock);
	return e != NULL;
}

uint64_t nf_admin_session_lifetime_ms(const struct nf_admin_sessions *s)
{
	return s->lifetime_ms;
}
