/*
 * port.c - the POSIX port's handle: defaults, the MAC and chip id a device
 * reports, the serial console (nf_port_log), the reboot request
 * (nf_port_reboot), and the flash calls of the port contract, which go to
 * the handle's flash backend: the flash directory (flash.c, the default) or
 * the memory flash (memflash.c, for fleets), and feed the signature check
 * (verify.c) the bytes written. A process cannot reset itself
 * the way a chip does, so nf_port_reboot only records the request; the
 * program that owns the handle reboots it (`nofuss device` re-executes
 * itself, `nofuss fleet` runs the memory flash's bootloader).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "common.h"
#include "nofuss/posix.h"

#define DEFAULT_MAC "5C:CF:7F:00:00:01"
#define SDK_VERSION "2.2.2-dev(nofuss-posix)"

void nf_posix_init(struct nf_posix *p)
{
	memset(p, 0, sizeof *p);
	p->console = stdout;
	p->log_prefix = "[nofuss] ";
	p->connect_timeout_ms = NF_POSIX_CONNECT_TIMEOUT_MS_DEFAULT;
	p->timeout_ms = NF_POSIX_TIMEOUT_MS_DEFAULT;
	p->sdk_version = SDK_VERSION;
	p->flash.dirfd = -1;
	p->flash.fd = -1;
	p->flash.running = -1;
	p->flash.console = stdout;
	p->flash_ops = &nf_posix_flash_dir_ops;
	nf_posix_set_mac(p, DEFAULT_MAC);
}

int nf_posix_set_mac(struct nf_posix *p, const char *mac)
{
	uint8_t b[6];

	if (strlen(mac) != 17)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (nf_hex_decode(mac + 3 * i, &b[i], 1) != 0 || (i < 5 && mac[3 * i + 2] != ':'))
			return -1;
	}
	snprintf(p->sta_mac, sizeof p->sta_mac, "%02X:%02X:%02X:%02X:%02X:%02X", b[0], b[1], b[2],
	         b[3], b[4], b[5]);
	/* The ESP8266's soft-AP MAC is the station's with the locally
	 * administered bit set; its chip id is the MAC's last three bytes. */
	snprintf(p->ap_mac, sizeof p->ap_mac, "%02X:%02X:%02X:%02X:%02X:%02X", b[0] | 0x02, b[1],
	         b[2], b[3], b[4], b[5]);
	p->chip_id = (uint32_t)b[3] << 16 | (uint32_t)b[4] << 8 | b[5];
	return 0;
}

void nf_posix_release(struct nf_posix *p)
{
	if (p->curl != NULL)
		curl_easy_cleanup(p->curl);
	p->curl = NULL;
	EVP_MD_CTX_free(p->md5);
	p->md5 = NULL;
}

void nf_posix_destroy(struct nf_posix *p)
{
	nf_posix_release(p);
	nf_posix_sign_close(p);
	if (p->flash_ops != NULL)
		p->flash_ops->close(p);
	nf_posix_flash_close(&p->flash); /* idempotent: also when another backend ran */
}

void nf_posix_log(struct nf_posix *p, const char *prefix, const char *line)
{
	if (p->console == NULL)
		return;
	fprintf(p->console, "%s%s\n", prefix != NULL ? prefix : p->log_prefix, line);
	fflush(p->console);
}

void nf_posix_logf(struct nf_posix *p, const char *prefix, const char *fmt, ...)
{
	char line[NF_POSIX_LOG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	nf_posix_log(p, prefix, line);
}

void nf_port_log(void *port, const char *line)
{
	nf_posix_log(port, NULL, line);
}

/* ---- the flash calls: to the handle's backend ---- */

int nf_port_flash_begin(void *port, enum nf_image image, uint32_t size)
{
	struct nf_posix *p = port;
	int rc = p->flash_ops->begin(p, image, size);

	/* A resumed download answered 200 (the image changed) is aborted and
	 * begun again within one transfer: the new body is wanted. */
	if (rc == 0) {
		p->cancel = false;
		nf_posix_sign_begin(p);
	}
	return rc;
}

int nf_port_flash_write(void *port, const uint8_t *data, size_t len)
{
	struct nf_posix *p = port;
	int rc = p->flash_ops->write(p, data, len);

	if (rc == 0)
		nf_posix_sign_write(p, data, len); /* what verify.c checks is what was written */
	return rc;
}

/* nf_port_flash_verify is verify.c's. */

int nf_port_flash_finish(void *port)
{
	struct nf_posix *p = port;
	int rc = -1;

	/* With a key, nothing unsigned is committed, whoever writes. */
	if (nf_posix_sign_committable(p))
		rc = p->flash_ops->finish(p);
	else
		p->flash_ops->abort(p);
	nf_posix_sign_end(p);
	return rc;
}

void nf_port_flash_abort(void *port)
{
	struct nf_posix *p = port;

	nf_posix_sign_end(p);
	p->flash_ops->abort(p);
	if (p->in_transfer)
		p->cancel = true; /* no point downloading the rest */
}

int nf_posix_boot(struct nf_posix *p, struct nf_posix_boot *b, char *err, size_t errcap)
{
	return p->flash_ops->boot(p, b, err, errcap);
}

int nf_posix_confirm(struct nf_posix *p, char *err, size_t errcap)
{
	return p->flash_ops->confirm(p, err, errcap);
}

void nf_port_reboot(void *port)
{
	struct nf_posix *p = port;

	p->reboot_requested = true;
}

