/*
 * fuzz_ota_stream.c - libFuzzer harness for what the ArduinoOTA code reads
 * from the network (tools/ota/proto.c): the invitation, the AUTH challenge
 * and its answer (each datagram parsed whole), and the device's ack stream
 * fed in pieces whose sizes and the host's sent counts come from the input.
 * Checks the parsers' own invariants: acked never exceeds sent, the exact
 * account is never behind by more than was sent and says "all acked" only
 * when it is behind by nothing, the text stays NUL-terminated within its
 * buffer, a parsed invitation re-formats.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nf_ota_invite inv;
	struct nf_ota_acks a;
	char err[NF_OTA_ERR_MAX], buf[NF_OTA_DATAGRAM_MAX], n1[NF_OTA_MD5_HEX + 1],
	    n2[NF_OTA_MD5_HEX + 1];
	size_t off = 0;

	if (nf_ota_invite_parse((const char *)data, size, &inv, err, sizeof err) == 0) {
		if (nf_ota_invite_format(&inv, buf, sizeof buf) < 0)
			abort();
	}
	(void)nf_ota_challenge_parse((const char *)data, size, n1, err, sizeof err);
	(void)nf_ota_auth_parse((const char *)data, size, n1, n2, err, sizeof err);

	/* The ack stream: each step takes a control byte (low 5 bits: piece
	 * length; high 3 bits: chunks sent before it). */
	nf_ota_acks_init(&a, NF_OTA_CHUNK);
	while (off < size) {
		uint8_t ctl = data[off++];
		size_t piece = ctl & 0x1fu;

		for (unsigned i = 0; i < (unsigned)(ctl >> 5); i++)
			nf_ota_acks_sent(&a, NF_OTA_CHUNK);
		if (piece > size - off)
			piece = size - off;
		nf_ota_acks_feed(&a, data + off, piece);
		off += piece;
		if (a.acked > a.sent || a.text_len >= sizeof a.text ||
		    strlen(a.text) != a.text_len || nf_ota_acks_behind(&a) > a.sent ||
		    nf_ota_acks_all(&a) != (nf_ota_acks_behind(&a) == 0))
			abort();
	}
	nf_ota_acks_end(&a);
	if (a.acked > a.sent)
		abort();
	return 0;
}
