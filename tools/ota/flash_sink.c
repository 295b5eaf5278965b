/*
 * flash_sink.c - an ArduinoOTA push written through the device port's
 * flash calls, and the Updater's checks every sink makes (see ota.h).
 */
#include <stdio.h>

#include "nofuss/port.h"
#include "ota.h"

#define ESP_MAGIC 0xE9 /* a firmware image's first byte */

int nf_ota_sink_check_begin(struct nf_ota_sink_checks *c, int command, uint32_t size, char *err,
                            size_t errcap)
{
	if (c->max_size > 0 && size > c->max_size) {
		snprintf(err, errcap, "%u bytes do not fit the %u allowed", (unsigned)size,
		         (unsigned)c->max_size);
		return NF_OTA_UPDATE_SPACE;
	}
	c->firmware = command == NF_OTA_CMD_FIRMWARE;
	c->first = true;
	return 0;
}

/* The Updater's magic byte check on a firmware's first byte. */
int nf_ota_sink_check_write(struct nf_ota_sink_checks *c, const uint8_t *data, size_t len,
                            char *err, size_t errcap)
{
	if (c->first && len > 0) {
		c->first = false;
		if (c->firmware && data[0] != ESP_MAGIC) {
			snprintf(err, errcap, "first byte 0x%02X", data[0]);
			return NF_OTA_UPDATE_MAGIC;
		}
	}
	return 0;
}

static int flash_begin(void *ctx, int command, uint32_t size, const char *md5, char *err,
                       size_t errcap)
{
	struct nf_ota_flash_sink *s = ctx;
	int code = nf_ota_sink_check_begin(&s->checks, command, size, err, errcap);

	(void)md5;
	if (code != 0)
		return code;
	if (nf_port_flash_begin(
	        s->port, s->checks.firmware ? NF_IMAGE_FIRMWARE : NF_IMAGE_FILESYSTEM, size) != 0) {
		snprintf(err, errcap, "the flash refused %u bytes", (unsigned)size);
		return NF_OTA_UPDATE_SPACE;
	}
	return 0;
}

static int flash_write(void *ctx, const uint8_t *data, size_t len, char *err, size_t errcap)
{
	struct nf_ota_flash_sink *s = ctx;
	int code = nf_ota_sink_check_write(&s->checks, data, len, err, errcap);

	if (code != 0)
		return code;
	if (nf_port_flash_write(s->port, data, len) != 0) {
		snprintf(err, errcap, "flash write refused (see the console)");
		return NF_OTA_UPDATE_WRITE;
	}
	return 0;
}

static int flash_finish(void *ctx, char *err, size_t errcap)
{
	struct nf_ota_flash_sink *s = ctx;

	if (nf_port_flash_finish(s->port) != 0) {
		snprintf(err, errcap, "flash commit failed (see the console)");
		return NF_OTA_UPDATE_WRITE;
	}
	return 0;
}

static void flash_abort(void *ctx)
{
	struct nf_ota_flash_sink *s = ctx;

	nf_port_flash_abort(s->port);
}

void nf_ota_flash_sink_init(struct nf_ota_flash_sink *s, void *port, uint32_t max_size,
                            struct nf_ota_sink *sink)
{
	s->checks = (struct nf_ota_sink_checks){.max_size = max_size};
	s->port = port;
	*sink = (struct nf_ota_sink){s, flash_begin, flash_write, flash_finish, flash_abort};
}
