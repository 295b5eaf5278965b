/*
 * strerror.c - the text of each nf_error, apart from the state machine so
 * that a device that never prints errors does not link the strings.
 */
#include "nofuss/client.h"

const char *nf_strerror(enum nf_error err)
{
	static const char *const text[] = {
	    "ok",
	    "connection failed or was cut",
	    "unexpected HTTP status",
	    "empty answer",
	    "answer is not a flat JSON object of strings",
	    "answer too long",
	    "URL too long",
	    "image without a Content-Length",
	    "image too big for the flash",
	    "image length differs from Content-Length",
	    "image MD5 differs from x-MD5",
	    "x-MD5 is not 32 hex characters",
	    "firmware does not start with 0xE9 or 0x1F",
	    "flash write failed",
	    "server, device or version missing or too long",
	    "image refused by the device's signature check",
	};
	return (unsigned)err < sizeof text / sizeof text[0] ? text[err] : "unknown error";
}
