/*
 * fuzz_config.c - libFuzzer harness for the INI reader (config.c with
 * inih): any bytes as a config file; a refusal always names the file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nofussd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct nf_config cfg;
	char err[1024] = "";
	FILE *f;

	if (path[0] == '\0')
		snprintf(path, sizeof path, "/tmp/nofuss-fuzz-config-%d.ini", (int)getpid());
	f = fopen(path, "w");
	if (f == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	nf_config_defaults(&cfg);
	if (nf_config_load(&cfg, path, err, sizeof err) != 0 && strstr(err, path) == NULL)
		abort();
	if (nf_config_finish(&cfg, err, sizeof err) == 0 && cfg.base[0] != '\0' &&
	    (cfg.base[0] != '/' || cfg.base[strlen(cfg.base) - 1] == '/'))
		abort(); /* base is normalised */
	unlink(path);
	return 0;
}
