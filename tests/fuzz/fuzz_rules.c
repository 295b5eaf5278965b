/*
 * fuzz_rules.c - libFuzzer harness for the versions.json loader (rules.c):
 * any bytes are parsed; when they load, a few queries are matched and every
 * answer must be a NUL-terminated body of the stated length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct nf_query queries[] = {
	    {"TEST", 4, "0.1.0", 5, "5C:CF:7F:8B:6B:26", "1"},
	    {"TEST", 4, "1.0rc1", 6, NULL, NULL},
	    {"*", 1, "", 0, "", ""},
	    {"SONOFF", 6, "0.9.7", 5, "AA:BB:CC:DD:EE:FF", ""},
	};
	char err[1024];
	struct nf_rules *rules;

	nf_log_set_level(NF_LOG_SILENT);
	rules = nf_rules_parse((const char *)data, size, "fuzz.json", err, sizeof err);
	if (rules == NULL) {
		if (strlen(err) == 0)
			abort(); /* every refusal says why */
		return 0;
	}
	for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
		long t = nf_rules_match(rules, &queries[i]);
		if (t >= 0) {
			const struct nf_target *target = nf_rules_target(rules, (size_t)t);
			if (target == NULL || strlen(target->body) != target->body_len)
				abort();
		}
	}
	nf_rules_free(rules);
	return 0;
}
