/*
 * acks.c - the device's answer stream during an ArduinoOTA push, as the
 * host reads it (see ota.h): decimal acks that run together, then the
 * final OK or ERROR[n]. Two readings of the digits run side by side: the
 * greedy estimate `acked`, for progress, and the exact account, which
 * decides whether every byte sent was acknowledged.
 *
 * The exact account keeps every reading at once, as sets of lags: bit d of
 * reading[k] says "some way of cutting the digits into acks leaves complete
 * acks totalling sent - d, with the last k digits pending". A new digit
 * either extends the pending ack (while it stays at most max_ack and acks
 * no byte not yet sent) or completes it and starts a new one (a digit other
 * than '0'); bytes sent move every lag up. Lags above NF_OTA_ACK_WINDOW are
 * dropped, so the sets stay a few kilobytes and each digit costs a few
 * hundred word operations. As soon as some reading acks every byte sent,
 * it is taken as the truth and the account starts afresh from there: a
 * device reads what it was sent and acks each read, so the acks of what
 * was sent add up to it, and a host that waits for that before sending
 * more (send.c) keeps the sets to the acks of one chunk. No sockets and no
 * clocks.
 */
#include <stdio.h>
#include <string.h>

#include "ota.h"

static const uint32_t pow10_[NF_OTA_ACK_WIDTH + 1] = {1, 10, 100, 1000, 10000};

/* ---- sets of lags 0..NF_OTA_ACK_WINDOW ---- */

#define LAST_WORD (NF_OTA_ACK_WORDS - 1u)
/* The bits of the last word in use. */
#define LAST_MASK ((2ull << (NF_OTA_ACK_WINDOW % 64u)) - 1u)

static bool lag_test(const uint64_t *s, uint64_t d)
{
	return d <= NF_OTA_ACK_WINDOW && (s[d / 64] >> (d % 64) & 1u) != 0;
}

/* The smallest lag in s, or UINT64_MAX when s is empty. */
static uint64_t lag_min(const uint64_t *s)
{
	for (unsigned w = 0; w < NF_OTA_ACK_WORDS; w++)
		if (s[w] != 0)
			return (uint64_t)w * 64u + (uint64_t)__builtin_ctzll(s[w]);
	return UINT64_MAX;
}

/* Every lag d becomes d + n; lags past the window are dropped. */
static void lag_up(uint64_t *s, uint64_t n)
{
	unsigned words = (unsigned)(n / 64u), bits = (unsigned)(n % 64u);

	if (n > NF_OTA_ACK_WINDOW) {
		memset(s, 0, NF_OTA_ACK_WORDS * sizeof *s);
		return;
	}
	for (unsigned w = NF_OTA_ACK_WORDS; w-- > 0;) {
		uint64_t v = 0;

		if (w >= words) {
			v = s[w - words] << bits;
			if (bits != 0 && w > words)
				v |= s[w - words - 1] >> (64u - bits);
		}
		s[w] = v;
	}
	s[LAST_WORD] &= LAST_MASK;
}

/* dst |= the lags of src, each d becoming d - n (none is below n). */
static void lag_down_or(uint64_t *dst, const uint64_t *src, uint32_t n)
{
	unsigned words = n / 64u, bits = n % 64u;

	for (unsigned w = 0; w + words < NF_OTA_ACK_WORDS; w++) {
		uint64_t v = src[w + words] >> bits;

		if (bits != 0 && w + words + 1 < NF_OTA_ACK_WORDS)
			v |= src[w + words + 1] << (64u - bits);
		dst[w] |= v;
	}
}

/* Drops the lags below min. */
static void lag_at_least(uint64_t *s, uint64_t min)
{
	if (min > NF_OTA_ACK_WINDOW) {
		memset(s, 0, NF_OTA_ACK_WORDS * sizeof *s);
		return;
	}
	memset(s, 0, (size_t)(min / 64u) * sizeof *s);
	if (min % 64u != 0)
		s[min / 64u] &= ~0ull << (min % 64u);
}

/* ---- the exact account ---- */

/* The pending ack of reading[k]: the stream's last k digits. */
static uint32_t pending_of(const struct nf_ota_acks *a, unsigned k)
{
	return a->last % pow10_[k];
}

static bool account_empty(const struct nf_ota_acks *a)
{
	for (unsigned k = 0; k <= NF_OTA_ACK_WIDTH; k++)
		if (lag_min(a->reading[k]) != UINT64_MAX)
			return false;
	return true;
}

/* One more digit c: every reading extends its pending ack or completes it
 * and starts a new one. Returns false when no reading is left. */
static bool account_digit(struct nf_ota_acks *a, unsigned c)
{
	uint64_t start[NF_OTA_ACK_WORDS] = {0};
	uint32_t last = (a->last * 10u + c) % pow10_[NF_OTA_ACK_WIDTH];

	if (c != 0) {
		/* Complete the pending ack (none for k = 0), then c starts one. */
		memcpy(start, a->reading[0], sizeof start);
		for (unsigned k = 1; k <= NF_OTA_ACK_WIDTH; k++)
			lag_down_or(start, a->reading[k], pending_of(a, k));
		lag_at_least(start, c);
	}
	/* Extend: the pending k - 1 digits and c make a k-digit ack. */
	for (unsigned k = NF_OTA_ACK_WIDTH; k > 1; k--) {
		uint32_t longer = last % pow10_[k];

		memcpy(a->reading[k], a->reading[k - 1], sizeof a->reading[k]);
		if (longer > a->max_ack)
			memset(a->reading[k], 0, sizeof a->reading[k]);
		else
			lag_at_least(a->reading[k], longer);
	}
	memcpy(a->reading[1], start, sizeof start);
	memset(a->reading[0], 0, sizeof a->reading[0]);
	a->last = last;
	if (nf_ota_acks_all(a)) {
		/* Every byte sent is acked in some reading: take it, and start
		 * afresh from "nothing outstanding". */
		memset(a->reading, 0, sizeof a->reading);
		a->reading[0][0] = 1;
		return true;
	}
	return !account_empty(a);
}

bool nf_ota_acks_all(const struct nf_ota_acks *a)
{
	if (lag_test(a->reading[0], 0))
		return true;
	for (unsigned k = 1; k <= NF_OTA_ACK_WIDTH; k++)
		if (lag_test(a->reading[k], pending_of(a, k)))
			return true;
	return false;
}

uint64_t nf_ota_acks_behind(const struct nf_ota_acks *a)
{
	uint64_t best = a->sent;

	for (unsigned k = 0; k <= NF_OTA_ACK_WIDTH; k++) {
		uint64_t d = lag_min(a->reading[k]);

		if (d != UINT64_MAX && d - pending_of(a, k) < best)
			best = d - pending_of(a, k);
	}
	return best;
}

/* ---- the stream ---- */

void nf_ota_acks_init(struct nf_ota_acks *a, uint32_t max_ack)
{
	memset(a, 0, sizeof *a);
	a->state = NF_OTA_ACKS_RUNNING;
	a->max_ack = max_ack == 0               ? NF_OTA_CHUNK
	             : max_ack > NF_OTA_ACK_MAX ? NF_OTA_ACK_MAX
	                                        : max_ack;
	a->reading[0][0] = 1; /* nothing acked, nothing sent: lag 0 */
}

static enum nf_ota_acks_state bad(struct nf_ota_acks *a, const char *why)
{
	a->state = NF_OTA_ACKS_BAD;
	snprintf(a->text, sizeof a->text, "%s", why);
	a->text_len = strlen(a->text);
	return a->state;
}

void nf_ota_acks_sent(struct nf_ota_acks *a, uint32_t n)
{
	a->sent += n;
	for (unsigned k = 0; k <= NF_OTA_ACK_WIDTH; k++)
		lag_up(a->reading[k], n);
	if (a->state == NF_OTA_ACKS_RUNNING && account_empty(a)) {
		char why[NF_OTA_TEXT_MAX];

		snprintf(why, sizeof why, "the device fell more than %u bytes behind in its acks",
		         NF_OTA_ACK_WINDOW);
		bad(a, why);
	}
}

/* The largest ack possible now, for the estimate. */
static uint64_t ack_cap(const struct nf_ota_acks *a)
{
	uint64_t outstanding = a->sent - a->acked;

	return outstanding < a->max_ack ? outstanding : a->max_ack;
}

static void complete_pending(struct nf_ota_acks *a)
{
	if (a->pending_digits == 0)
		return;
	a->acked += a->pending;
	a->pending = 0;
	a->pending_digits = 0;
}

/* One byte of the final answer. */
static enum nf_ota_acks_state final_byte(struct nf_ota_acks *a, uint8_t c)
{
	if (c == '\n') {
		a->final_done = true;
		return a->state;
	}
	if (c == '\r')
		return a->state;
	if (c < 0x20 || c >= 0x7f)
		return bad(a, "control or non-ASCII byte in the device's final answer");
	if (a->text_len + 1 >= sizeof a->text)
		return bad(a, "the device's final answer is too long");
	a->text[a->text_len++] = (char)c;
	a->text[a->text_len] = '\0';
	return a->state;
}

/* One ack digit: the estimate, then the exact account. */
static enum nf_ota_acks_state digit(struct nf_ota_acks *a, uint8_t c)
{
	uint64_t v = a->pending * 10 + (uint64_t)(c - '0');

	/* Each ack n >= 1 has at most n digits: more digits than bytes sent
	 * cannot be acks. */
	if (++a->digits > a->sent)
		return bad(a, "more ack digits than bytes sent");
	if (a->digits == 1 && c == '0')
		return bad(a, "ack with a leading zero");
	if (!account_digit(a, (unsigned)(c - '0')))
		return bad(a, "the device's acks do not add up to the bytes sent");
	if (a->pending_digits > 0 && v > ack_cap(a)) {
		/* This digit starts the next ack. */
		complete_pending(a);
		v = (uint64_t)(c - '0');
	}
	if (v == 0 || v > ack_cap(a)) {
		/* Not splittable with what is known (a device whose reads split
		 * unluckily): not counted. */
		a->uncounted++;
		return a->state;
	}
	a->pending = v;
	a->pending_digits++;
	if (a->pending * 10 > ack_cap(a))
		complete_pending(a); /* no digit can extend it */
	return a->state;
}

enum nf_ota_acks_state nf_ota_acks_feed(struct nf_ota_acks *a, const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = data[i];

		if (a->state == NF_OTA_ACKS_BAD || a->final_done)
			break;
		if (a->state != NF_OTA_ACKS_RUNNING) {
			final_byte(a, c);
			continue;
		}
		if (c >= '0' && c <= '9') {
			digit(a, c);
			continue;
		}
		complete_pending(a);
		if (c == 'O')
			a->state = NF_OTA_ACKS_OK;
		else if (c == 'E')
			a->state = NF_OTA_ACKS_ERROR;
		else
			return bad(a, "the device answered neither an ack, OK nor ERROR");
		a->text[0] = (char)c;
		a->text[1] = '\0';
		a->text_len = 1;
	}
	return a->state;
}

enum nf_ota_acks_state nf_ota_acks_end(struct nf_ota_acks *a)
{
	if (a->state == NF_OTA_ACKS_RUNNING)
		complete_pending(a);
	return a->state;
}
