/*
 * fleet_life.c - a fleet device's life (see fleet.c for the whole): its
 * power-ons (the shared start-up of firmware.c on its memory flash), its
 * checks' results, when it acts next (a timer heap keyed by that time, and
 * the queue of devices waiting for a transfer slot), and its --verbose
 * lines. What it counts goes into struct nf_fleet for the summary.
 */
#include <stdarg.h>
#include <stdio.h>

#include "nofuss/posix.h"
#include "sim.h"

#define FLEET_BOOTS_MAX 8u /* boots in a row without a check: a boot loop */

/* ---- randomness, --verbose ---- */

/* xorshift64*: ramp and jitter only; reproducible with --seed. */
static uint64_t rnd(struct nf_fleet *f)
{
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 2685821657736338717ull;
}

/* A random 0..max (milliseconds). */
long nf_fleet_rnd_ms(struct nf_fleet *f, long max)
{
	return max > 0 ? (long)(rnd(f) % (uint64_t)(max + 1)) : 0;
}

void nf_fleet_say(struct nf_fleet_device *d, const char *fmt, ...)
{
	struct nf_fleet *f = d->fleet;
	va_list ap;

	if (!f->o.verbose)
		return;
	nf_fleet_clear_status(f);
	fprintf(stderr, "[%s] %s %s: ", d->port.sta_mac, d->client.device, d->client.version);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the timer heap and the queue ---- */

static bool earlier(const struct nf_fleet *f, uint32_t a, uint32_t b)
{
	return f->dev[a].due_ms < f->dev[b].due_ms;
}

static void heap_push(struct nf_fleet *f, uint32_t i)
{
	size_t k = f->heap_len++;

	while (k > 0) {
		size_t parent = (k - 1) / 2;
		if (!earlier(f, i, f->heap[parent]))
			break;
		f->heap[k] = f->heap[parent];
		k = parent;
	}
	f->heap[k] = i;
}

uint32_t nf_fleet_heap_pop(struct nf_fleet *f)
{
	uint32_t top = f->heap[0], last = f->heap[--f->heap_len];
	size_t k = 0, n = f->heap_len;

	if (n == 0)
		return top;
	for (;;) {
		size_t c = 2 * k + 1;
		if (c >= n)
			break;
		if (c + 1 < n && earlier(f, f->heap[c + 1], f->heap[c]))
			c++;
		if (!earlier(f, f->heap[c], last))
			break;
		f->heap[k] = f->heap[c];
		k = c;
	}
	f->heap[k] = last;
	return top;
}

static uint32_t index_of(const struct nf_fleet *f, const struct nf_fleet_device *d)
{
	return (uint32_t)(d - f->dev);
}

/* Puts d in the heap to boot (FLEET_PH_BOOT) or check (FLEET_PH_SLEEP) at due. */
static void schedule(struct nf_fleet *f, struct nf_fleet_device *d, enum nf_fleet_phase ph,
                     int64_t due)
{
	d->phase = (uint8_t)ph;
	d->due_ms = due;
	heap_push(f, index_of(f, d));
}

void nf_fleet_enqueue(struct nf_fleet *f, struct nf_fleet_device *d)
{
	d->phase = FLEET_PH_QUEUED;
	f->queue[(f->q_head + f->q_len) % f->o.count] = index_of(f, d);
	f->q_len++;
}

struct nf_fleet_device *nf_fleet_dequeue(struct nf_fleet *f)
{
	struct nf_fleet_device *d = &f->dev[f->queue[f->q_head]];

	f->q_head = (f->q_head + 1) % f->o.count;
	f->q_len--;
	return d;
}

/* ---- a device: boot, checks, results ---- */

static void on_message(void *ctx, const struct nf_client *c, enum nf_message msg)
{
	struct nf_fleet_device *d = ctx;
	enum nf_error err = nf_client_last_error(c);

	switch (msg) {
	case NF_MSG_UPDATING:
		d->downloading = true;
		nf_fleet_say(d, "UPDATING to %s", nf_client_offered_version(c));
		break;
	case NF_MSG_FILESYSTEM_UPDATED: nf_fleet_say(d, "FILESYSTEM_UPDATED"); break;
	case NF_MSG_FIRMWARE_UPDATED: nf_fleet_say(d, "FIRMWARE_UPDATED"); break;
	case NF_MSG_NO_RESPONSE_ERROR:
		nf_fleet_say(d, "NO_RESPONSE_ERROR: %s", nf_strerror(err));
		break;
	case NF_MSG_PARSE_ERROR: nf_fleet_say(d, "PARSE_ERROR: %s", nf_strerror(err)); break;
	case NF_MSG_FILESYSTEM_UPDATE_ERROR:
		nf_fleet_say(d, "FILESYSTEM_UPDATE_ERROR: %s", nf_strerror(err));
		break;
	case NF_MSG_FIRMWARE_UPDATE_ERROR:
		nf_fleet_say(d, "FIRMWARE_UPDATE_ERROR: %s", nf_strerror(err));
		break;
	default: break;
	}
}

bool nf_fleet_settled(const struct nf_fleet *f, const struct nf_fleet_device *d)
{
	return d->result == FLEET_RES_UPTODATE ||
	       (d->result == FLEET_RES_FAILED && d->streak >= f->o.give_up);
}

static void set_failed(struct nf_fleet_device *d, int err)
{
	d->result = FLEET_RES_FAILED;
	d->error = (uint8_t)err;
	if (d->streak < UINT8_MAX)
		d->streak++;
}

/* After a check (or a boot): the next check at due, or nothing more. */
static void next_check(struct nf_fleet *f, struct nf_fleet_device *d, int64_t due)
{
	if (f->stopping || (f->o.until_updated && nf_fleet_settled(f, d))) {
		d->phase = FLEET_PH_DONE;
		return;
	}
	schedule(f, d, FLEET_PH_SLEEP, due);
}

/* What the bootloader did, before the firmware runs. */
static void booted(void *ctx, const struct nf_posix_boot *b)
{
	struct nf_fleet_device *d = ctx;

	if (b->how == NF_POSIX_BOOT_REVERTED || b->how == NF_POSIX_BOOT_FALLBACK) {
		d->fleet->reverts++;
		nf_fleet_say(d, "boot: %s: booting slot %s", b->why, nf_posix_slot_name(b->slot));
	}
}

void nf_fleet_boot(struct nf_fleet *f, struct nf_fleet_device *d, int64_t check_at)
{
	const struct nf_fleet_options *o = &f->o;
	/* Every setting was checked to fit when the options were read. */
	const struct nf_sim_firmware fw = {.port = &d->port,
	                                   .client = &d->client,
	                                   .server = o->server,
	                                   .build = o->build,
	                                   .path_form = o->path_form,
	                                   .name = o->names[index_of(f, d) % o->nnames],
	                                   .on_message = on_message,
	                                   .booted = booted,
	                                   .ctx = d};
	struct nf_posix_boot b;
	char err[NF_POSIX_ERR_MAX];

	f->boots++;
	if (++d->boot_streak > FLEET_BOOTS_MAX) {
		nf_fleet_say(d, "%u boots without a check: boot loop, giving up", FLEET_BOOTS_MAX);
		set_failed(d, FLEET_ERR_BOOT_LOOP);
		d->phase = FLEET_PH_DONE;
		return;
	}
	switch (nf_sim_power_on(&fw, &b, err, sizeof err)) {
	case NF_SIM_BRICKED:
	case NF_SIM_FLASH_FAILED:
		nf_fleet_say(d, "bricked: %s", err);
		set_failed(d, FLEET_ERR_BRICKED);
		d->phase = FLEET_PH_DONE;
		return;
	case NF_SIM_CRASHED:
		f->crashes++;
		nf_fleet_say(d, "boot: firmware %s crashed at boot (simulated)",
		             b.firmware.version);
		if (f->stopping)
			d->phase = FLEET_PH_DONE;
		else
			schedule(f, d, FLEET_PH_BOOT, f->now + o->reboot_ms);
		return;
	default: break; /* up: a memory flash confirms, the settings fit */
	}
	if (d->rebooting) {
		d->rebooting = false;
		if (b.how == NF_POSIX_BOOT_REVERTED) {
			set_failed(d, FLEET_ERR_REVERTED);
		} else {
			f->installs++;
			d->updated = true;
			d->streak = 0;
			nf_fleet_say(d, "boot: running the update (slot %s, filesystem %s)",
			             nf_posix_slot_name(b.slot),
			             b.fs_valid ? b.fs.version : "invalid");
		}
	}
	next_check(f, d, check_at);
}

/* A check is over; the slot is free again. */
void nf_fleet_check_done(struct nf_fleet *f, struct nf_fleet_slot *s, bool reboot)
{
	nf_fleet_check_end(f, s, reboot, (int)nf_client_last_error(&s->d->client));
}

void nf_fleet_check_end(struct nf_fleet *f, struct nf_fleet_slot *s, bool reboot, int err)
{
	struct nf_fleet_device *d = s->d;

	s->d = NULL;
	f->free_slots[f->nfree++] = (uint32_t)(s - f->slots);
	f->active--;
	nf_posix_release(&d->port); /* nothing held while it sleeps */
	d->boot_streak = 0;
	d->downloading = false;
	f->checks++;
	if (reboot) {
		nf_fleet_say(d, "RESET: rebooting into the update");
		d->rebooting = true;
		d->result = FLEET_RES_NONE;
		schedule(f, d, FLEET_PH_BOOT, f->now + f->o.reboot_ms);
		return;
	}
	if (err != (int)NF_OK) {
		f->checks_failed++;
		f->check_errors[err < FLEET_ERR_REVERTED ? err : 0]++;
		set_failed(d, err);
	} else {
		d->result = FLEET_RES_UPTODATE;
		d->streak = 0;
	}
	next_check(f, d, f->now + f->o.interval_ms + nf_fleet_rnd_ms(f, f->o.jitter_ms));
}
