/*
 * tls.c - TLS for a libmicrohttpd listener (GnuTLS, through MHD's own TLS
 * support): a certificate chain and its key from PEM files, a GnuTLS
 * priority string, and a reload that swaps them under a running daemon.
 *
 * libmicrohttpd 0.9.75 cannot change MHD_OPTION_HTTPS_MEM_CERT once the
 * daemon runs, so the daemon is given MHD_OPTION_HTTPS_CERT_CALLBACK
 * instead: GnuTLS asks the callback for the credentials at each handshake,
 * and the callback hands out whatever set is current. A reload (SIGHUP)
 * reads and parses the files on this module's own thread, never on the
 * loop, checks that the key matches the certificate, and only then swaps
 * the current set with one atomic store. A handshake that began with the
 * old set may still hold its pointers, so a replaced set is not freed at
 * once: the last NF_TLS_RETIRED_MAX sets are kept (a handshake would have to
 * outlast that many reloads to see a freed one, and GnuTLS uses them only
 * during the handshake), the rest freed oldest first, all at nf_tls_close.
 * A reload that fails keeps the current set and says why.
 *
 * The callback has no user pointer (gnutls_certificate_retrieve_function2),
 * so each open nf_tls takes one of NF_TLS_MAX_LISTENERS slots, each with a
 * callback of its own: the device listener and the admin listener can each
 * have their certificate. Nothing in a handshake takes a lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "nofussd.h"
#include "tls.h"

/* One certificate chain and its key, immutable once made. */
struct creds {
	gnutls_pcert_st pcerts[NF_MAX_TLS_CHAIN];
	unsigned npcerts;
	gnutls_privkey_t key;
	struct creds *retired_next;
};

struct nf_tls {
	int slot;
	char setting[NF_MAX_TLS_SETTING]; /* "tls", "admin-tls": messages name SETTING-cert */
	char label[NF_MAX_TLS_SETTING + 4]; /* the log's "TLS", "admin TLS" */
	struct MHD_OptionItem options[NF_TLS_MHD_OPTIONS + 1]; /* ends with MHD_OPTION_END */
	_Atomic(struct creds *) current;
	struct creds *retired; /* newest first; the reload thread's (then close's) */
	char cert_path[NF_MAX_PATH], key_path[NF_MAX_PATH];
	char priorities[NF_MAX_TLS_PRIORITIES];
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool pending, stopping;
};

static _Atomic(struct nf_tls *) slots[NF_TLS_MAX_LISTENERS];

static void creds_free(struct creds *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < c->npcerts; i++)
		gnutls_pcert_deinit(&c->pcerts[i]);
	gnutls_privkey_deinit(c->key);
	free(c);
}

/* Reads a whole PEM file of at most NF_MAX_TLS_PEM bytes into *out (a
 * gnutls datum the caller frees). 0, or -1 with err filled, naming the
 * setting SETTING-what. */
static int read_pem(const char *setting, const char *what, const char *path, gnutls_datum_t *out,
                    char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	out->data = NULL;
	if (fd < 0) {
		nf_errf(err, errlen, "%s-%s %s: %s", setting, what, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
	    st.st_size > NF_MAX_TLS_PEM) {
		nf_errf(err, errlen, "%s-%s %s: not a PEM file of 1 to %d bytes", setting, what, path,
		        NF_MAX_TLS_PEM);
		close(fd);
		return -1;
	}
	out->data = gnutls_malloc((size_t)st.st_size + 1);
	n = out->data != NULL ? read(fd, out->data, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size) {
		nf_errf(err, errlen, "%s-%s %s: cannot be read", setting, what, path);
		gnutls_free(out->data);
		out->data = NULL;
		return -1;
	}
	out->data[n] = '\0';
	out->size = (unsigned)n;
	return 0;
}

/* Whether key is the private half of the certificate's public key: a key
 * that is not is refused here, not at every handshake later. */
static bool same_key(gnutls_pcert_st *cert, gnutls_privkey_t key)
{
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
	bool same = gnutls_pubkey_init(&pub) == 0 && gnutls_pubkey_import_privkey(pub, key, 0, 0) == 0 &&
	            gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &a) == 0 &&
	            gnutls_pubkey_export2(cert->pubkey, GNUTLS_X509_FMT_DER, &b) == 0 &&
	            a.size == b.size && memcmp(a.data, b.data, a.size) == 0;

	gnutls_free(a.data);
	gnutls_free(b.data);
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	return same;
}

/* The chain and key from the files, checked to belong together. NULL with
 * err filled (naming SETTING-cert or SETTING-key). Slow (file reads,
 * parsing): never on the loop. */
static struct creds *creds_load(const char *setting, const char *cert_path, const char *key_path,
                                char *err, size_t errlen)
{
	gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
	struct creds *c = calloc(1, sizeof *c);
	int rc;

	if (c == NULL) {
		nf_errf(err, errlen, "out of memory");
		return NULL;
	}
	if (read_pem(setting, "cert", cert_path, &cert, err, errlen) != 0 ||
	    read_pem(setting, "key", key_path, &key, err, errlen) != 0)
		goto fail;
	c->npcerts = NF_MAX_TLS_CHAIN;
	rc = gnutls_pcert_list_import_x509_raw(c->pcerts, &c->npcerts, &cert, GNUTLS_X509_FMT_PEM,
	                                       GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
	if (rc < 0) {
		c->npcerts = 0;
		nf_errf(err, errlen, "%s-cert %s: %s (at most %d certificates, the server's first)",
		        setting, cert_path, gnutls_strerror(rc), NF_MAX_TLS_CHAIN);
		goto fail;
	}
	rc = gnutls_privkey_init(&c->key);
	if (rc == 0)
		rc = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		nf_errf(err, errlen, "%s-key %s: %s", setting, key_path, gnutls_strerror(rc));
		goto fail;
	}
	if (!same_key(&c->pcerts[0], c->key)) {
		nf_errf(err, errlen, "%s-cert %s with %s-key %s: the certificate and the key do not "
		        "match", setting, cert_path, setting, key_path);
		goto fail;
	}
	goto done;
fail:
	creds_free(c);
	c = NULL;
done:
	gnutls_free(cert.data);
	if (key.data != NULL)
		gnutls_memset(key.data, 0, key.size);
	gnutls_free(key.data);
	return c;
}

/* The handshake's question: the current set of the listener in slot. */
static int choose(int slot, gnutls_pcert_st **pcert, unsigned int *n, gnutls_privkey_t *key)
{
	struct nf_tls *tls = atomic_load_explicit(&slots[slot], memory_order_acquire);
	struct creds *c = tls != NULL ? atomic_load_explicit(&tls->current, memory_order_acquire)
	                              : NULL;

	if (c == NULL)
		return -1; /* the handshake fails */
	*pcert = c->pcerts;
	*n = c->npcerts;
	*key = c->key;
	return 0;
}

#define NF_TLS_CALLBACK(i)                                                                   \
	static int choose_##i(gnutls_session_t s, const gnutls_datum_t *rdn, int nreqs,        \
	                      const gnutls_pk_algorithm_t *algos, int nalgos,                  \
	                      gnutls_pcert_st **pcert, unsigned int *n, gnutls_privkey_t *key) \
	{                                                                                      \
		(void)s, (void)rdn, (void)nreqs, (void)algos, (void)nalgos;                        \
		return choose(i, pcert, n, key);                                                   \
	}
NF_TLS_CALLBACK(0)
NF_TLS_CALLBACK(1)
NF_TLS_CALLBACK(2)
NF_TLS_CALLBACK(3)
static gnutls_certificate_retrieve_function2 *const callbacks[] = {choose_0, choose_1, choose_2,
                                                                   choose_3};
_Static_assert(sizeof callbacks / sizeof callbacks[0] == NF_TLS_MAX_LISTENERS,
               "one callback per listener slot");

/* Frees retired sets beyond NF_TLS_RETIRED_MAX. The reload thread. */
static void trim_retired(struct nf_tls *tls)
{
	struct creds **p = &tls->retired;
	size_t kept = 0;

	while (*p != NULL && kept < NF_TLS_RETIRED_MAX) {
		p = &(*p)->retired_next;
		kept++;
	}
	while (*p != NULL) {
		struct creds *c = *p;
		*p = c->retired_next;
		creds_free(c);
	}
}

static void reload_once(struct nf_tls *tls)
{
	char err[NF_ERR_LEN];
	struct creds *c = creds_load(tls->setting, tls->cert_path, tls->key_path, err, sizeof err);
	struct creds *old;

	if (c == NULL) {
		nf_log(NF_LOG_ERROR, "%s reload failed, still serving the previous certificate: %s",
		       tls->label, err);
		return;
	}
	old = atomic_exchange_explicit(&tls->current, c, memory_order_acq_rel);
	old->retired_next = tls->retired;
	tls->retired = old;
	trim_retired(tls);
	nf_log(NF_LOG_INFO, "%s: reloaded %s (%u certificates) and %s", tls->label, tls->cert_path,
	       c->npcerts, tls->key_path);
}

static void *run(void *arg)
{
	struct nf_tls *tls = arg;

	nf_worker_nice();
	pthread_mutex_lock(&tls->lock);
	for (;;) {
		while (!tls->pending && !tls->stopping)
			pthread_cond_wait(&tls->wake, &tls->lock);
		if (tls->stopping)
			break;
		tls->pending = false;
		pthread_mutex_unlock(&tls->lock);
		reload_once(tls);
		pthread_mutex_lock(&tls->lock);
	}
	pthread_mutex_unlock(&tls->lock);
	return NULL;
}

bool nf_tls_supported(void)
{
	return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES &&
	       MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) == MHD_YES;
}

int nf_tls_check_priorities(const char *priorities, char *err, size_t errlen)
{
	gnutls_priority_t prio;
	const char *at = NULL;
	int rc = gnutls_priority_init(&prio, priorities, &at);

	if (rc < 0) {
		nf_errf(err, errlen, "tls-priorities \"%s\": %s at \"%s\"", priorities,
		        gnutls_strerror(rc), at != NULL ? at : "");
		return -1;
	}
	gnutls_priority_deinit(prio);
	return 0;
}

/* "admin-tls" -> "admin TLS", "tls" -> "TLS": the prefix before "tls",
 * dashes as spaces, then "TLS". */
static void make_label(const char *setting, char *out, size_t cap)
{
	size_t len = strlen(setting), n = len >= 3 ? len - 3 : 0;

	snprintf(out, cap, "%.*sTLS", (int)n, setting);
	for (size_t i = 0; i < n && i < cap; i++)
		if (out[i] == '-')
			out[i] = ' ';
}

struct nf_tls *nf_tls_open(const char *setting, const char *cert, const char *key,
                           const char *priorities, char *err, size_t errlen)
{
	struct nf_tls *tls;
	struct creds *c;
	int rc;

	if (!nf_tls_supported()) {
		nf_errf(err, errlen, "TLS: this libmicrohttpd was built without HTTPS support "
		                     "(MHD_FEATURE_TLS and the certificate callback)");
		return NULL;
	}
	if (priorities == NULL || priorities[0] == '\0')
		priorities = NF_TLS_PRIORITIES_DEFAULT;
	if (strlen(priorities) >= NF_MAX_TLS_PRIORITIES) {
		nf_errf(err, errlen, "tls-priorities: longer than %d bytes", NF_MAX_TLS_PRIORITIES - 1);
		return NULL;
	}
	if (strlen(setting) >= NF_MAX_TLS_SETTING) {
		nf_errf(err, errlen, "TLS: setting name \"%s\" too long", setting);
		return NULL;
	}
	if (nf_tls_check_priorities(priorities, err, errlen) != 0)
		return NULL;
	c = creds_load(setting, cert, key, err, errlen);
	if (c == NULL)
		return NULL;
	tls = calloc(1, sizeof *tls);
	if (tls == NULL) {
		creds_free(c);
		nf_errf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&tls->current, c);
	snprintf(tls->setting, sizeof tls->setting, "%s", setting);
	make_label(setting, tls->label, sizeof tls->label);
	snprintf(tls->cert_path, sizeof tls->cert_path, "%s", cert);
	snprintf(tls->key_path, sizeof tls->key_path, "%s", key);
	snprintf(tls->priorities, sizeof tls->priorities, "%s", priorities);
	tls->slot = -1;
	for (int i = 0; i < NF_TLS_MAX_LISTENERS && tls->slot < 0; i++) {
		struct nf_tls *none = NULL;
		if (atomic_compare_exchange_strong(&slots[i], &none, tls))
			tls->slot = i;
	}
	if (tls->slot >= 0) {
		/* Single-pointer options take their value in ptr_value. */
		tls->options[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
		                                          (void *)callbacks[tls->slot]};
		tls->options[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
		                                          (void *)tls->priorities};
		tls->options[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	}
	pthread_mutex_init(&tls->lock, NULL);
	pthread_cond_init(&tls->wake, NULL);
	rc = tls->slot < 0 ? EBUSY : pthread_create(&tls->thread, NULL, run, tls);
	if (rc != 0) {
		nf_errf(err, errlen, "TLS: %s", tls->slot < 0 ? "too many TLS listeners" : strerror(rc));
		if (tls->slot >= 0)
			atomic_store(&slots[tls->slot], NULL);
		pthread_cond_destroy(&tls->wake);
		pthread_mutex_destroy(&tls->lock);
		creds_free(c);
		free(tls);
		return NULL;
	}
	return tls;
}

unsigned nf_tls_mhd_flags(const struct nf_tls *tls)
{
	return tls != NULL ? (unsigned)MHD_USE_TLS : 0;
}

const struct MHD_OptionItem *nf_tls_mhd_options(const struct nf_tls *tls)
{
	static const struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};

	return tls != NULL ? tls->options : none;
}

/* Sets one of the thread's flags and wakes it. */
static void tell(struct nf_tls *tls, bool *flag)
{
	pthread_mutex_lock(&tls->lock);
	*flag = true;
	pthread_cond_signal(&tls->wake);
	pthread_mutex_unlock(&tls->lock);
}

void nf_tls_reload(struct nf_tls *tls)
{
	if (tls != NULL)
		tell(tls, &tls->pending);
}

void nf_tls_close(struct nf_tls *tls)
{
	if (tls == NULL)
		return;
	tell(tls, &tls->stopping);
	pthread_join(tls->thread, NULL);
	atomic_store(&slots[tls->slot], NULL);
	while (tls->retired != NULL) {
		struct creds *c = tls->retired;
		tls->retired = c->retired_next;
		creds_free(c);
	}
	creds_free(atomic_load(&tls->current));
	pthread_cond_destroy(&tls->wake);
	pthread_mutex_destroy(&tls->lock);
	free(tls);
}
