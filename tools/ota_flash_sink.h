/*
 * ota_flash_sink.h - where an ArduinoOTA push (ota_recv.h) writes into a
 * simulator's flash directory: the POSIX port's flash calls, so the image
 * takes the same checks and commit path as an update the device core
 * downloads (firmware: the spare slot, on trial; filesystem: fs.bin).
 * Shared by `nofuss ota-recv --flash` and `nofuss device --ota`.
 *
 * Also the Updater's own checks that every sink makes (the size limit and
 * a firmware's magic first byte), for the other sinks to reuse.
 */
#ifndef NOFUSS_TOOLS_OTA_FLASH_SINK_H
#define NOFUSS_TOOLS_OTA_FLASH_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nofuss/posix.h"
#include "ota_recv.h"

/* The Updater's checks: set max_size (0: no limit but the protocol's),
 * the rest is state. */
struct nf_ota_sink_checks {
	uint32_t max_size;
	bool firmware; /* the update in progress is a firmware */
	bool first;    /* no byte written yet */
};

/* At begin: the size limit; remembers the kind. 0 or an enum
 * nf_ota_update_error with err filled. */
int nf_ota_sink_check_begin(struct nf_ota_sink_checks *c, int command, uint32_t size, char *err,
                            size_t errcap);
/* At each write: a firmware's first byte must be 0xE9. */
int nf_ota_sink_check_write(struct nf_ota_sink_checks *c, const uint8_t *data, size_t len,
                            char *err, size_t errcap);

struct nf_ota_flash_sink {
	struct nf_ota_sink_checks checks;
	struct nf_posix *port; /* booted: its flash is open */
};

/* Fills sink with callbacks writing into port's flash through s (which
 * must outlive the receiver). max_size 0: only the flash's own limits. */
void nf_ota_flash_sink_init(struct nf_ota_flash_sink *s, struct nf_posix *port, uint32_t max_size,
                            struct nf_ota_sink *sink);

#endif
