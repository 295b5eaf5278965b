/*
 * nofuss_esp8266.h - the ESP8266 port of the device core (Arduino core for
 * the ESP8266): its state, and the limits it works within.
 *
 * The port (nofuss_esp8266.cpp) implements include/nofuss/port.h with the
 * Arduino core's own classes: HTTP through ESP8266HTTPClient over a
 * WiFiClient, the flash through the Updater (`Update`), MD5 with the ROM's
 * MD5 functions, the reboot with ESP.restart(). Its state is this one struct,
 * owned by the caller (NoFUSSClient.cpp keeps it beside the core's struct in
 * the global NoFUSSClient object); the port itself allocates nothing and
 * holds no String. docs/ESP8266.md says what the stock flash layout can and
 * cannot do.
 */
#ifndef NOFUSS_ESP8266_H
#define NOFUSS_ESP8266_H

#include <stdbool.h>
#include <stdint.h>

#define NF_ESP8266_CHUNK      512  /* body bytes handed to the core at a time */
#define NF_ESP8266_TIMEOUT_MS 5000 /* connect, and silence while receiving */

struct nf_esp8266 {
	/* The receive buffer; also the flash read buffer for the running
	 * sketch's MD5. 4-byte aligned: ESP.flashRead() wants words. */
	alignas(4) uint8_t buf[NF_ESP8266_CHUNK];
	char sketch_md5[33]; /* lower-case hex of the running sketch, "" until computed */
	uint16_t timeout_ms;
	bool cancel; /* the core aborted the image: stop reading the body */
	bool in_transfer;
};

/* Resets p to its defaults (the timeout above). */
void nf_esp8266_init(struct nf_esp8266 *p);
/* Writes mac as "5C:CF:7F:8B:6B:26" (upper case, as WiFi.macAddress()) into
 * out, 18 bytes with the NUL. */
void nf_esp8266_format_mac(char out[18], const uint8_t mac[6]);

#endif
