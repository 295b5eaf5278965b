/*
 * bootloader.c - what the two flash backends share: the bootloader's
 * policy, the limits of a flash geometry, and the ESP updater's check of a
 * firmware header against the chip.
 *
 * The policy decides, from the confirmed slot, the trial slot and the trial
 * boots made so far, which slot boots: a new firmware gets exactly one
 * trial boot; if it does not confirm itself by the next boot, or cannot be
 * booted at all, the bootloader reverts to the confirmed slot; when the
 * confirmed slot is broken it falls back to the other one; when neither
 * holds a bootable firmware the device is bricked. The flash directory
 * (flash.c) and the memory flash (memflash.c) differ only in how they
 * verify a slot and where they keep the choice (a state file written
 * atomically, or a struct), which they hand in as two callbacks: so a
 * fleet boots, reverts and falls back exactly as `nofuss device` does.
 */
#include <errno.h>
#include <string.h>

#include "common.h"
#include "nofuss/posix.h"

#define ESP_MAGIC 0xE9 /* the only firmware whose header byte 3 is checked */

bool nf_posix_geometry_ok(const struct nf_posix_geometry *g)
{
	return g->slot_size >= NF_POSIX_IMAGE_MIN && g->slot_size <= NF_POSIX_FLASH_SIZE_MAX &&
	       g->fs_size >= NF_POSIX_IMAGE_MIN && g->fs_size <= NF_POSIX_FLASH_SIZE_MAX &&
	       g->chip_size >= NF_POSIX_IMAGE_MIN && g->chip_size <= NF_POSIX_FLASH_SIZE_MAX;
}

int nf_posix_check_chip(struct nf_posix *p, const uint8_t head[4], uint32_t chip_size)
{
	uint32_t need;

	if (head[0] != ESP_MAGIC)
		return 0;
	need = nf_posix_image_flash_bytes(head[3]);
	if (need > chip_size) {
		nf_posix_logf(p, NULL,
		              "flash: the image asks for a %u-byte flash (header byte 3 = "
		              "0x%02x); the chip has %u",
		              need, head[3], chip_size);
		return -1;
	}
	return 0;
}

/* Records next through the backend; s follows only on success. */
static int save(const struct nf_posix_bootloader *bl, struct nf_posix_slots *s,
                const struct nf_posix_slots *next, char *err, size_t errcap)
{
	if (bl->save(bl->ctx, next, err, errcap) != 0)
		return -1;
	*s = *next;
	return 0;
}

/* The trial slot's one boot, or the revert when it had it already or does
 * not verify. Returns the slot booted, -1 for none (reverted), -2 when the
 * choice could not be recorded. */
static int boot_trial(const struct nf_posix_bootloader *bl, struct nf_posix_slots *s,
                      struct nf_posix_boot *b, char *err, size_t errcap)
{
	struct nf_posix_slots next = *s;
	char why[NF_POSIX_ERR_MAX];
	int t = s->trial;

	if (s->attempts == 0 && bl->verify(bl->ctx, t, &b->firmware, why, sizeof why) == 0) {
		next.attempts = 1; /* recorded before it runs: a crash counts */
		if (save(bl, s, &next, err, errcap) != 0)
			return -2;
		b->how = NF_POSIX_BOOT_TRIAL;
		return t;
	}
	if (s->attempts != 0)
		nf_errf(b->why, sizeof b->why, "slot %s did not confirm its trial boot",
		              nf_posix_slot_name(t));
	else
		nf_errf(b->why, sizeof b->why, "slot %s is not bootable: %s",
		              nf_posix_slot_name(t), why);
	next.trial = -1;
	next.attempts = 0;
	if (save(bl, s, &next, err, errcap) != 0)
		return -2;
	b->how = NF_POSIX_BOOT_REVERTED;
	return -1;
}

int nf_posix_bootloader_run(const struct nf_posix_bootloader *bl, struct nf_posix_slots *s,
                            struct nf_posix_boot *b, char *err, size_t errcap)
{
	char why_a[NF_POSIX_ERR_MAX], why_b[NF_POSIX_ERR_MAX];
	struct nf_posix_slots next;
	int slot = -1, other;

	if (s->trial >= 0) {
		slot = boot_trial(bl, s, b, err, errcap);
		if (slot == -2)
			return -1;
	}
	if (slot < 0) {
		slot = s->active;
		other = 1 - slot;
		if (bl->verify(bl->ctx, slot, &b->firmware, why_a, sizeof why_a) != 0) {
			if (bl->verify(bl->ctx, other, &b->firmware, why_b, sizeof why_b) != 0) {
				nf_errf(err, errcap,
				              "no bootable firmware: slot %s: %s; slot %s: %s",
				              nf_posix_slot_name(slot), why_a,
				              nf_posix_slot_name(other), why_b);
				errno = ENOEXEC; /* bricked, as opposed to an I/O error */
				return -1;
			}
			nf_errf(b->why, sizeof b->why, "slot %s is not bootable: %s",
			              nf_posix_slot_name(slot), why_a);
			next = *s;
			next.active = other;
			if (save(bl, s, &next, err, errcap) != 0)
				return -1;
			slot = other;
			b->how = NF_POSIX_BOOT_FALLBACK;
		}
	}
	b->slot = slot;
	return 0;
}

bool nf_posix_slots_confirm(const struct nf_posix_slots *s, int running,
                            struct nf_posix_slots *next)
{
	*next = *s;
	if (s->active == running && s->trial < 0)
		return false;
	next->active = running;
	next->trial = -1;
	next->attempts = 0;
	return true;
}

void nf_posix_slots_try(const struct nf_posix_slots *s, int slot, struct nf_posix_slots *next)
{
	*next = *s;
	next->trial = slot; /* boot it next, once, on trial */
	next->attempts = 0;
}
