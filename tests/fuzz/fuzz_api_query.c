/*
 * fuzz_api_query.c - libFuzzer harness for the admin API's query-string
 * parser (server/admin/filter.c): any bytes as GET /api/v1/devices?...
 * An accepted query always gives a filter the store accepts (limit,
 * offset, state and sort in range, strings within their arrays, a MAC
 * prefix in the stored form); a refused one always says why. The same bytes
 * go through the time parser, which never reads past the string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t now = 1796212800000LL;
	struct nf_admin_query q;
	char err[1024] = "", param[16];
	char *text = malloc(size + 1);
	int64_t t;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (nf_admin_query_parse(text, size, now, &q, param, err, sizeof err) == 0) {
		const struct nf_device_filter *f = &q.filter;
		if (f->limit < 1 || f->limit > NF_STORE_MAX_PAGE ||
		    f->offset > NF_ADMIN_MAX_OFFSET || f->state < -1 ||
		    f->state >= NF_UPDATE_COUNT || (unsigned)f->sort >= NF_SORT_COUNT)
			abort();
		if ((f->device != NULL && strlen(f->device) >= NF_STORE_MAX_TEXT) ||
		    (f->version != NULL && strlen(f->version) >= NF_STORE_MAX_TEXT) ||
		    (f->ip_prefix != NULL && strlen(f->ip_prefix) >= NF_STORE_IP_LEN) ||
		    (f->tag != NULL && !nf_admin_tag_valid(f->tag)))
			abort();
		if (f->mac_prefix != NULL &&
		    (strlen(f->mac_prefix) >= NF_STORE_MAC_LEN ||
		     f->mac_prefix[strspn(f->mac_prefix, "0123456789ABCDEF:")] != '\0'))
			abort();
	} else if (err[0] == '\0' || strlen(param) >= sizeof param) {
		abort();
	}
	(void)nf_admin_parse_time(text, now, &t);
	free(text);
	return 0;
}
