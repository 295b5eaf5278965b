/*
 * store_checks.h - the fleet store's checks that hold for either backend:
 * the proof-of-update state machine through every transition, the history
 * bound, filters, sorting and pagination, the summary, migrations from an
 * old schema, and close writing everything queued.
 *
 * test_store (SQLite, a file in a temporary folder) and store_pg_test (a
 * real PostgreSQL started by tests/integration/test_store_pg.py) run the
 * same list, each with its own fixture: *state is a struct store_fixture
 * whose url names a fresh, empty database for the test.
 *
 *     #define X(name) cmocka_unit_test_setup_teardown(name, setup, teardown),
 *     const struct CMUnitTest tests[] = {STORE_CHECKS(X)};
 */
#ifndef NOFUSS_TEST_STORE_CHECKS_H
#define NOFUSS_TEST_STORE_CHECKS_H

#include <stdint.h>

#include "store.h"

struct store_fixture {
	char url[1024];
	char *dir; /* SQLite: the temporary folder; NULL for PostgreSQL */
};

#define STORE_T0 INT64_C(1700000000000) /* 2023-11-14, the tests' time zero, in ms */

/* Opens url with options (NULL: defaults); fails the test on error. */
struct nf_store *store_check_open(const char *url, const struct nf_store_options *o);
/* A check from mac (NULL: none) at ip, device type and version, at t. */
struct nf_event store_check_event(const char *mac, const char *ip, const char *device,
                                  const char *version, int64_t t);
/* The same check answered with an offer of target (firmware path fw, may be
 * NULL; filesystem path fs, may be NULL). */
void store_check_offer(struct nf_event *e, const char *target, const char *fw, const char *fs);
/* A download event of kind for path, offset bytes of total, at t. */
struct nf_event store_check_download(int kind, const char *mac, const char *ip,
                                     const char *path, uint64_t bytes, uint64_t total,
                                     int64_t t);
/* Posts ev and waits until it is written; fails the test otherwise. */
void store_check_post(struct nf_store *s, const struct nf_event *ev);
void store_check_sync(struct nf_store *s);
/* The device with key, its state at now and its history (freed by the
 * caller); fails the test if it is missing. */
struct nf_device store_check_device(struct nf_store *s, const char *key, int64_t now,
                                    struct nf_history **h, size_t *n);

void check_offer_to_confirmed(void **state);
void check_reverted(void **state);
void check_rollout_counts(void **state);
void check_failed_then_confirmed(void **state);
void check_silent(void **state);
void check_stock_updater_md5(void **state);
void check_withdrawn_and_held(void **state);
void check_deferred_keeps_offer(void **state);
void check_path_form(void **state);
void check_download_before_offer(void **state);
void check_path_form_mac(void **state);
void check_stale_check(void **state);
void check_odd_strings(void **state);
void check_history_bound(void **state);
void check_list(void **state);
void check_summary(void **state);
void check_close_writes_all(void **state);
void check_migrate_old(void **state);
void check_release_ids_never_reused(void **state);
void check_audit_refusals_bounded(void **state);

#define STORE_CHECKS(X)                                                                   \
	X(check_offer_to_confirmed)                                                       \
	X(check_reverted)                                                                 \
	X(check_rollout_counts)                                                           \
	X(check_failed_then_confirmed)                                                    \
	X(check_silent)                                                                   \
	X(check_stock_updater_md5)                                                        \
	X(check_withdrawn_and_held)                                                       \
	X(check_deferred_keeps_offer)                                                     \
	X(check_path_form)                                                                \
	X(check_download_before_offer)                                                    \
	X(check_path_form_mac)                                                            \
	X(check_stale_check)                                                              \
	X(check_odd_strings)                                                              \
	X(check_history_bound)                                                            \
	X(check_list)                                                                     \
	X(check_summary)                                                                  \
	X(check_close_writes_all)                                                         \
	X(check_migrate_old)                                                               \
	X(check_release_ids_never_reused)                                                   \
	X(check_audit_refusals_bounded)

#endif
