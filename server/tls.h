/*
 * tls.h - TLS for any libmicrohttpd listener of nofussd (tls.c): the device
 * listener (tls-cert, tls-key, tls-priorities) and the admin listener alike.
 *
 * Use: nf_tls_open at start-up (it fails on a bad file, a key that is not
 * the certificate's or a bad priority string, with a message naming the
 * setting and the file); add nf_tls_mhd_flags to the daemon's flags and
 * nf_tls_mhd_options to its options (through MHD_OPTION_ARRAY); call
 * nf_tls_reload on SIGHUP; nf_tls_close after the daemon has stopped.
 * Neither needs microhttpd.h, so main.c can hand them to the admin
 * listener (admin.h's struct nf_admin_params).
 */
#ifndef NOFUSSD_TLS_H
#define NOFUSSD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#define NF_MAX_TLS_PEM         (256 * 1024) /* a certificate chain or key file */
#define NF_MAX_TLS_CHAIN       8            /* certificates in a chain (the server's first) */
#define NF_MAX_TLS_PRIORITIES  512          /* a GnuTLS priority string */
#define NF_TLS_MAX_LISTENERS   4            /* TLS listeners open at once in a process */
#define NF_TLS_RETIRED_MAX     16           /* replaced certificates kept for handshakes */
#define NF_TLS_MHD_OPTIONS     2            /* options nf_tls_mhd_options lists */
#define NF_MAX_TLS_SETTING     16           /* "tls", "admin-tls": the settings' prefix */
/* TLS 1.3 and 1.2 only, AEAD ciphers with forward secrecy, keys of at least
 * 2048-bit RSA strength (GnuTLS's "medium" profile). */
#define NF_TLS_PRIORITIES_DEFAULT                                                        \
	"SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:" \
	"+CHACHA20-POLY1305:+AES-128-GCM:-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA:%PROFILE_MEDIUM"

struct nf_tls;
struct MHD_OptionItem;

/* Whether this libmicrohttpd can do TLS with a certificate callback. */
bool nf_tls_supported(void);
/* 0 when GnuTLS accepts priorities, else -1 with err naming where not. */
int nf_tls_check_priorities(const char *priorities, char *err, size_t errlen);
/* Loads the certificate chain (PEM, the server's certificate first) and
 * its key (PEM), checks that they belong together and that priorities
 * ("" or NULL: NF_TLS_PRIORITIES_DEFAULT) parse, and starts the reload
 * thread. setting is the settings' prefix, "tls" (the device listener) or
 * "admin-tls": messages name SETTING-cert and SETTING-key, and the log says
 * "TLS" or "admin TLS" (at most NF_MAX_TLS_SETTING - 1 bytes). Returns NULL
 * with err filled (also when libmicrohttpd lacks TLS, or
 * NF_TLS_MAX_LISTENERS are open). The caller frees it with nf_tls_close. */
struct nf_tls *nf_tls_open(const char *setting, const char *cert, const char *key,
                           const char *priorities, char *err, size_t errlen);
/* The daemon flags tls needs (MHD_USE_TLS), or 0 for NULL (plain HTTP). */
unsigned nf_tls_mhd_flags(const struct nf_tls *tls);
/* The daemon options for tls (the certificate callback and the priorities),
 * ending with MHD_OPTION_END, for MHD_OPTION_ARRAY; for NULL, a list of
 * MHD_OPTION_END alone. Owned by tls (static for NULL): it lives as long
 * as tls. */
const struct MHD_OptionItem *nf_tls_mhd_options(const struct nf_tls *tls);
/* Asks the reload thread to read both files again: new handshakes get the
 * new certificate once it is parsed and checked; a bad one is logged and
 * the old one kept. Never blocks on the files; any thread (the loop). NULL
 * is ignored. */
void nf_tls_reload(struct nf_tls *tls);
/* Stops the reload thread and frees every certificate. Only once the
 * daemon using it has stopped. NULL is ignored. */
void nf_tls_close(struct nf_tls *tls);

#endif
