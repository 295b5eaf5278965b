/*
 * names.c - the store's names and identities: update states, client kinds
 * and history kinds as the admin API spells them, MACs normalised to
 * "AA:BB:CC:DD:EE:FF", the device key of an event, and the bounded copies
 * the loop uses to fill a struct nf_event.
 *
 * A device's key is its MAC when it sent one, otherwise "device@ip" (a
 * path-form check carries no MAC; docs/STORE.md section 4). An all-zero
 * MAC is no identity: arduino-esp32 3.x sends x-ESP32-AP-MAC as zeros in
 * station mode.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "common.h"
#include "store.h"

static const char *const state_names[NF_UPDATE_COUNT] = {
	"none", "offered", "downloading", "downloaded", "confirmed", "reverted", "failed",
	"silent",
};
static const char *const client_names[NF_CLIENT_COUNT] = {
	"unknown", "nofuss-path", "nofuss", "esp8266-updater", "esp32-updater", "esphome",
	"tasmota",
};
static const char *const history_names[NF_HISTORY_COUNT] = {
	"?", "offered", "downloading", "downloaded", "confirmed", "reverted", "failed",
	"withdrawn", "held",
};
static const char *const answer_names[] = {"none", "offered", "held", "deferred"};

static int parse_name(const char *const *names, int count, const char *name)
{
	for (int i = 0; name != NULL && i < count; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

const char *nf_update_state_name(int state)
{
	return state >= 0 && state < NF_UPDATE_COUNT ? state_names[state] : "?";
}

int nf_update_state_parse(const char *name)
{
	return parse_name(state_names, NF_UPDATE_COUNT, name);
}

const char *nf_client_kind_name(int client)
{
	return client >= 0 && client < NF_CLIENT_COUNT ? client_names[client] : "unknown";
}

int nf_client_kind_parse(const char *name)
{
	return parse_name(client_names, NF_CLIENT_COUNT, name);
}

const char *nf_history_kind_name(int kind)
{
	return kind > 0 && kind < NF_HISTORY_COUNT ? history_names[kind] : "?";
}

const char *nf_answer_kind_name(int answer)
{
	return answer >= 0 && answer <= NF_ANSWER_DEFERRED ? answer_names[answer] : "?";
}

int nf_store_mac_normalize(const char *text, char out[NF_STORE_MAC_LEN])
{
	unsigned char mac[6] = {0};
	size_t n = 0;
	bool zero = true, sep = false;

	if (text == NULL)
		return -1;
	/* Twelve hex digits, optionally one ':' or '-' after each pair. Decoded
	 * as they come, and written by hand: nofussd calls this for every check
	 * on its loop, where snprintf alone cost a third of a check (callgrind). */
	for (const char *p = text; *p != '\0'; p++) {
		int d;
		if (*p == ':' || *p == '-') {
			if (sep || n == 0 || n % 2 != 0 || p[1] == '\0')
				return -1;
			sep = true;
			continue;
		}
		d = nf_hex_digit(*p);
		if (d < 0 || n == 12)
			return -1;
		mac[n / 2] = (unsigned char)(mac[n / 2] << 4 | d);
		n++;
		sep = false;
	}
	if (n != 12)
		return -1;
	for (size_t i = 0; i < sizeof mac; i++)
		zero = zero && mac[i] == 0;
	if (zero)
		return -1;
	for (size_t i = 0; i < sizeof mac; i++) {
		out[3 * i] = "0123456789ABCDEF"[mac[i] >> 4];
		out[3 * i + 1] = "0123456789ABCDEF"[mac[i] & 15];
		out[3 * i + 2] = i + 1 < sizeof mac ? ':' : '\0';
	}
	return 0;
}

void nf_event_key(const struct nf_event *ev, char key[NF_STORE_MAX_KEY])
{
	if (nf_store_mac_normalize(ev->mac, key) == 0)
		return;
	snprintf(key, NF_STORE_MAX_KEY, "%.*s@%.*s", NF_STORE_MAX_TEXT - 1, ev->device,
	         NF_STORE_IP_LEN - 1, ev->ip);
}

int nf_key_normalize(const char *text, char key[NF_STORE_MAX_KEY])
{
	if (text == NULL || text[0] == '\0')
		return -1;
	if (nf_store_mac_normalize(text, key) == 0)
		return 0;
	if (strchr(text, '@') == NULL || strlen(text) >= NF_STORE_MAX_KEY)
		return -1;
	memcpy(key, text, strlen(text) + 1);
	return 0;
}

void nf_store_copy(char *dst, size_t cap, const char *src, size_t len)
{
	size_t n = 0;

	if (cap == 0)
		return;
	while (src != NULL && n < len && n + 1 < cap && src[n] != '\0')
		n++;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

void nf_store_image_key(const char *path, size_t len, char out[NF_STORE_MAX_IMAGE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	len = strnlen(path, len);
	if (len < NF_STORE_MAX_IMAGE) {
		nf_store_copy(out, NF_STORE_MAX_IMAGE, path, len);
		return;
	}
	/* Too long to keep whole: its digest, the same for the check's offer
	 * and for the download that names it. */
	if (EVP_Digest(path, len, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16) {
		nf_store_copy(out, NF_STORE_MAX_IMAGE, path, NF_STORE_MAX_IMAGE - 1);
		return;
	}
	memcpy(out, "md5:", 4);
	nf_hex_encode(md, 16, out + 4);
}

int nf_store_default_url(const char *data_dir, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "sqlite://%s%sstore/fleet.db", data_dir,
	                 data_dir[0] != '\0' && data_dir[strlen(data_dir) - 1] == '/' ? "" : "/");

	return n > 0 && (size_t)n < outlen ? 0 : -1;
}
