/*
 * powercut.c - the fault injector: a simulated power cut right before the
 * Nth flash-affecting operation (each create, write, fsync, rename and
 * unlink in the flash directory; flash.c calls nf_posix_powercut_tick before
 * every one of them).
 *
 * This is the MCUboot simulator's idea: count the flash operations of a
 * whole update, then for every N cut the power before operation N and check
 * that the device still boots a valid image and can finish the update. The
 * cut is _exit(): nothing after the cut point reaches the flash, and no
 * atexit handler or stdio buffer runs, as when the power goes. Writes that
 * returned before the cut are kept (the model is "the operation did not
 * happen", not "the page cache was lost"); flash.c's ordering - data fsync
 * before the rename that publishes it, directory fsync after - is what makes
 * the real-power-loss case safe too.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "nofuss/posix.h"

/* Enough for any test; a bigger N is a typo. */
#define NF_POSIX_POWERCUT_MAX 100000000ul

void nf_posix_powercut_init(struct nf_posix_powercut *pc, unsigned long at, unsigned long done)
{
	pc->at = at;
	pc->count = done;
}

void nf_posix_powercut_tick(struct nf_posix_powercut *pc, FILE *console, const char *what,
                            const char *name)
{
	pc->count++;
	if (pc->at == 0 || pc->count != pc->at)
		return;
	if (console != NULL) {
		fprintf(console, "[sim] power cut before flash operation %lu (%s %s)\n", pc->count,
		        what, name);
		fflush(console);
	}
	_exit(NF_POSIX_POWER_CUT_EXIT);
}

int nf_posix_powercut_parse(const char *text, unsigned long *at)
{
	char *end;
	unsigned long v;

	*at = 0;
	if (text == NULL || text[0] == '\0')
		return 0;
	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || v > NF_POSIX_POWERCUT_MAX)
		return -1;
	*at = v;
	return 0;
}
