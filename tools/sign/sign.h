/*
 * sign.h - signed images from the command line, library nofuss_sign:
 * `nofuss keygen`, `nofuss pubkey`, `nofuss sign` and `nofuss verify`.
 * They are thin wrappers over the signed-image engine of nofuss_common
 * (common/sign*.c, API nf_sign_* in common/common.h): option tables, the
 * messages and the exit statuses. The format and the ESP8266 core's traps
 * are in docs/SIGNING.md. The table of contents, grouped by file:
 *
 *   keys.c    keygen, pubkey, and loading a key for the other commands
 *   sign.c    sign, with the engine's warnings on stderr
 *   verify.c  verify, one line per file
 *
 * Links nofuss_args and nofuss_common (OpenSSL's libcrypto).
 */
#ifndef NOFUSS_TOOLS_SIGN_H
#define NOFUSS_TOOLS_SIGN_H

#include "common.h"

/* Exit status shared by the four (beside args.h's 0 and 2; documented in
 * each --help and in docs/man/nofuss.1). */
#define NF_SIGN_EXIT_FAILED 1 /* not done: not written, not signed, not verified */
#define NF_SIGN_EXIT_KEY    3 /* the key file is missing or unusable */

/* Each command's exit statuses (args.h), printed in its --help and by nofuss --help. */
extern const struct nf_exit nf_keygen_exits[], nf_pubkey_exits[], nf_sign_exits[],
    nf_verify_exits[];

/* keys.c: loads the PEM key file path for a command (need_private: to
 * sign; min_bits: 0 for NF_SIGN_MIN_BITS). Returns the key (the caller
 * frees it with nf_sign_key_free), or NULL after saying why on stderr. */
struct nf_sign_key *nf_sign_tool_key(const char *path, int need_private, unsigned min_bits);

/* keys.c: `nofuss keygen`, an RSA key pair. */
int nf_cmd_keygen(int argc, char *argv[], char *prog_argv[]);
/* keys.c: `nofuss pubkey`, a key's public half as PEM or as a C header. */
int nf_cmd_pubkey(int argc, char *argv[], char *prog_argv[]);
/* sign.c: `nofuss sign`, an image signed with a private key. */
int nf_cmd_sign(int argc, char *argv[], char *prog_argv[]);
/* verify.c: `nofuss verify`, whether images are signed by a key. */
int nf_cmd_verify(int argc, char *argv[], char *prog_argv[]);

#endif /* NOFUSS_TOOLS_SIGN_H */
