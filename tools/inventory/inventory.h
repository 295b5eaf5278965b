/*
 * inventory.h - the fleet inventory from the command line, library
 * nofuss_inventory: `nofuss devices` (the list, and `nofuss devices show
 * KEY`) and `nofuss explain KEY`, clients of nofussd's admin API
 * (docs/ADMIN.md) over libcurl. Not to be confused with `nofuss device`, the
 * simulator. The table of contents, grouped by file:
 *
 *   client.c   the connection: --server, --cacert, the token, GET, the API's errors
 *   devices.c  devices: the list as a table or JSON, show, and pin, unpin,
 *              exclude, include, tag, untag
 *   explain.c  explain: the decision for one device
 *   release.c  release add|list|show|delete: releases (issue 10)
 *   rollout.c  rollout start|list|show [--watch]|pause|resume|advance|abort|halt
 *
 * Links nofuss_args, libcurl and jansson.
 */
#ifndef NOFUSS_TOOLS_INVENTORY_H
#define NOFUSS_TOOLS_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include <jansson.h>

#include "args.h"

/* Exit statuses shared by the two commands (beside args.h's 0 and 2). */
/* The API's bounds on a page of devices (docs/ADMIN.md section 3). */
#define NF_INV_MAX_LIMIT  1000
#define NF_INV_MAX_OFFSET 100000000
#define NF_INV_EXIT_ERROR     1 /* the server answered with an error */
#define NF_INV_EXIT_CONNECT   3 /* the server cannot be reached, or it is not the admin API */
#define NF_INV_EXIT_AUTH      4 /* no token, or the server refused it */
#define NF_INV_EXIT_NOT_FOUND 5 /* no such device */
#define NF_INV_EXIT_STOPPED   6 /* rollout show --watch: it ended halted or aborted */
#define NF_INV_EXIT_DEADLINE  7 /* rollout show --watch: --deadline passed first */

#define NF_INV_DEFAULT_SERVER "http://127.0.0.1:8081" /* nofussd's admin-port default */
#define NF_INV_MAX_ANSWER     (64u * 1024 * 1024)     /* bytes of one answer */
#define NF_INV_MAX_URL        4096
#define NF_INV_TIMEOUT_S      60     /* one request, whole */
#define NF_INV_UPLOAD_TIMEOUT_S 600  /* one upload, whole */
#define NF_INV_MAX_PAGES      100000 /* --all: pages fetched at most */

extern const struct nf_exit nf_devices_exits[], nf_explain_exits[], nf_release_exits[],
    nf_rollout_exits[];

/* client.c ----------------------------------------------------------------- */
/* What every command takes: where the API is and how to prove who we are. */
struct nf_inv_conn {
	const char *server;     /* base URL, e.g. http://127.0.0.1:8081 */
	const char *token_file; /* NULL: $NOFUSS_TOKEN */
	const char *cacert;     /* NULL: the system's CAs; else a PEM file (https://) */
	char token[260];
};
/* Fills c->token from c->token_file (the first field of its first line that
 * is not blank or a comment: nofussd's token file works) or NOFUSS_TOKEN.
 * Returns 0, or an exit status after saying why. */
int nf_inv_token(struct nf_inv_conn *c);
/* GETs server + path (already encoded). Returns 0 with the parsed JSON
 * object in *out (json_decref it), or an exit status after saying why, with
 * the API's own "error" message for 4xx and 5xx: 401 and 403 are
 * NF_INV_EXIT_AUTH, 404 NF_INV_EXIT_NOT_FOUND, others NF_INV_EXIT_ERROR. */
int nf_inv_get(const struct nf_inv_conn *c, const char *path, json_t **out);
/* As nf_inv_get with another method; upload: a file sent as the body of a
 * POST, streamed (NULL: no body). 201 is success too; a file that cannot
 * be read is NF_INV_EXIT_ERROR. */
int nf_inv_request(const struct nf_inv_conn *c, const char *method, const char *path,
                   const char *upload, json_t **out);
/* The file to upload, opened, a regular file (its size in *st); NULL after
 * saying why it cannot be read. */
FILE *nf_inv_open_upload(const char *file, struct stat *st);
/* As nf_inv_request, with body (when not NULL) sent as JSON (a POST). */
int nf_inv_send(const struct nf_inv_conn *c, const char *method, const char *path,
                const char *upload, json_t *body, json_t **out);
/* Appends "&name=VALUE" (or "?name=..." first), VALUE percent-encoded, to
 * url of cap bytes. Returns 0, or -1 when it does not fit. */
int nf_inv_add_param(char *url, size_t cap, const char *name, const char *value);
/* A device key for a URL path segment, percent-encoded, into out. 0 or -1. */
int nf_inv_escape(const char *text, char *out, size_t cap);
/* Prints s (a string from a device) with control characters as '?', cut
 * or padded to width columns (0: as is). */
void nf_inv_print(FILE *out, const char *s, int width);
/* obj[key] as text ("" for null or missing; numbers as decimals). */
const char *nf_inv_text(json_t *obj, const char *key, char *buf, size_t cap);

/* devices.c: `nofuss devices`, `nofuss devices show KEY`. */
int nf_cmd_devices(int argc, char *argv[], char *prog_argv[]);
/* explain.c: `nofuss explain KEY`. */
int nf_cmd_explain(int argc, char *argv[], char *prog_argv[]);
/* release.c: `nofuss release add|list|show|delete`. */
int nf_cmd_release(int argc, char *argv[], char *prog_argv[]);
/* rollout.c: `nofuss rollout ...`. */
int nf_cmd_rollout(int argc, char *argv[], char *prog_argv[]);

#endif /* NOFUSS_TOOLS_INVENTORY_H */
