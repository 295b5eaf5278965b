/*
 * nofuss/port.h - the porting contract: what a platform provides to the
 * device core. docs/PORTING.md explains each function on one page.
 *
 * A port is chosen at link time (ports/<platform>/ implements these
 * functions); the core has no #ifdef. Every function gets the `port` pointer
 * that was given to nf_client_init(), so one process can run many devices
 * (the fleet simulator). None may call back into the core except
 * nf_port_http_get, which feeds the response through the step API.
 */
#ifndef NOFUSS_PORT_H
#define NOFUSS_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "nofuss/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which image a flash operation is about. Values stored in flash by ports:
 * do not change. */
enum nf_image {
	NF_IMAGE_FIRMWARE = 0,
	NF_IMAGE_FILESYSTEM = 1,
};

/* Performs req (an HTTP/1.0-style GET, no redirects followed) and feeds the
 * response into c: nf_client_response_begin() once the status line and
 * headers are in (Content-Length, or -1; the x-MD5 header, or NULL), then
 * nf_client_response_data() for each piece of the body as it arrives, then
 * nf_client_response_end(c, ok) with ok false when the connection failed or
 * was cut. Blocking. */
void nf_port_http_get(void *port, const struct nf_request *req, struct nf_client *c);

/* Prepares to write an image of size bytes somewhere that is not in use
 * (the other firmware slot; a scratch area for the filesystem). Returns 0,
 * or -1 when it does not fit. */
int nf_port_flash_begin(void *port, enum nf_image image, uint32_t size);
/* Appends len bytes. Returns 0 or -1. */
int nf_port_flash_write(void *port, const uint8_t *data, size_t len);
/* The last word before the commit: every byte of the image went through
 * nf_port_flash_write(), its length is the Content-Length and its MD5 the
 * x-MD5. Returns 0 to accept the image, or -1 to refuse it (its signature
 * does not verify with the device's key, ...; say why with a log line): the
 * core then calls nf_port_flash_abort(), commits nothing and reports
 * NF_ERR_SIGNATURE. The port checks what it saw through
 * nf_port_flash_write() (hashing as it streams) or reads back what it
 * wrote: the core has no crypto. A port without signing returns 0. */
int nf_port_flash_verify(void *port);
/* The image is whole and verified: make it the one used from the next
 * boot on. Must be atomic with respect to power loss. Returns 0 or -1. */
int nf_port_flash_finish(void *port);
/* Forget what was written since nf_port_flash_begin(); the running image and
 * filesystem stay untouched. */
void nf_port_flash_abort(void *port);

/* MD5 with the platform's own implementation; ctx is
 * NF_CLIENT_HASH_CTX_MAX bytes, 8-byte aligned. */
void nf_port_md5_init(void *port, void *ctx);
void nf_port_md5_update(void *port, void *ctx, const uint8_t *data, size_t len);
void nf_port_md5_final(void *port, void *ctx, uint8_t digest[16]);

/* Restarts the device into whatever nf_port_flash_finish() committed. On a
 * device it does not return; a simulator may return and re-execute. */
void nf_port_reboot(void *port);
/* A line for the serial console (no newline). */
void nf_port_log(void *port, const char *line);

#ifdef __cplusplus
}
#endif
#endif
