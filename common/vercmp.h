/*
 * vercmp.h - version string comparison, bug-for-bug compatible with PHP.
 *
 * The original NoFUSS server is written in PHP and decides whether a device
 * needs an update with version_compare(). Devices in the field (and the
 * update manifests their owners have written) rely on that exact ordering,
 * quirks included, so nofuss reproduces PHP 8's algorithm from
 * ext/standard/versioning.c rather than implementing semver or any other
 * "nicer" scheme. See vercmp.c for the algorithm and its oddities.
 */
#ifndef NOFUSS_VERCMP_H
#define NOFUSS_VERCMP_H

#define NF_VERSION_MAX 128   /* longest version string nofuss accepts, in bytes, without the NUL */

/* Compares two NUL-terminated version strings like PHP's version_compare($a, $b):
 * returns -1, 0 or 1. No heap; inputs longer than NF_VERSION_MAX bytes are compared on
 * their first NF_VERSION_MAX bytes (callers reject longer versions before they get here). */
int nf_vercmp(const char *a, const char *b);

#endif /* NOFUSS_VERCMP_H */
