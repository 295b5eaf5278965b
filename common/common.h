/*
 * common.h - host-only helpers shared by nofussd and the tools: the table of
 * contents of the nofuss_common library. Never linked into the device core,
 * which runs on a microcontroller and has its own port.
 */
#ifndef NOFUSS_COMMON_H
#define NOFUSS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "vercmp.h" /* vercmp.c: PHP version_compare, exactly */

/* clock.c --------------------------------------------------------------- */
/* Milliseconds on the monotonic clock: for timeouts and durations, never
 * for dates (it does not follow the wall clock). */
uint64_t nf_clock_ms(void);

/* hex.c ----------------------------------------------------------------- */
/* Writes the 2*len lower-case hex digits of bytes into out, then a NUL:
 * out must have room for 2*len+1 bytes. Digests on the wire (x-MD5, the
 * ArduinoOTA MD5s) are lower-case. */
void nf_hex_encode(const unsigned char *bytes, size_t len, char *out);
/* Reads exactly 2*len hex digits (either case) from hex into bytes.
 * Returns 0, or -1 when hex is shorter or holds anything but hex digits
 * (bytes is then unspecified). */
int nf_hex_decode(const char *hex, unsigned char *bytes, size_t len);

#endif /* NOFUSS_COMMON_H */
