/*
 * errf.c - the one formatter of "why it failed" messages into a caller's
 * buffer, shared by the POSIX port and the tools.
 */
#include <stdarg.h>
#include <stdio.h>

#include "common.h"

void nf_errf(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
}
