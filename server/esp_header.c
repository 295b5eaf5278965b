/*
 * esp_header.c - what the first bytes of an image say about the flash it
 * was built for (issue 9 item 4: never offer what cannot fit).
 *
 * An ESP8266 or ESP32 application image starts with 0xE9, a segment count,
 * the SPI flash mode (byte 2) and a byte whose high nibble codes the flash
 * size the image was linked for (byte 3). The ESP8266 updater refuses an
 * image coded for a bigger flash than the chip (error -107, docs/PEERS.md
 * section 5.2), so nofussd reads this at snapshot build time and never
 * offers such an image. The two chips code the sizes differently, so the
 * nibble is kept raw and turned into bytes for the family that asks.
 *
 * An ESP32 image has an extended header (bytes 8-23): chip id at 12-13,
 * reserved bytes 19-22 that are zero, and a hash flag at 23 that is 0 or 1.
 * When these hold the image is taken for an ESP32 of that chip id (which
 * also names the ESPHome chipFamily); an ESP8266 image has its first
 * segment's load address there instead (0x401xxxxx, IRAM).
 *
 * A gzip image (0x1F 0x8B, ESP8266 core 2.7 and later) hides its header: its
 * flash size is unknown, and only its compressed size, which is what is
 * sent, can be tested against the free space.
 *
 * Pure and allocation-free; fuzzed by tests/fuzz/fuzz_esp_header.c.
 */
#include <stddef.h>
#include <stdint.h>

#include "nofussd.h"

#define ESP_MAGIC   0xE9
#define GZIP_MAGIC0 0x1F
#define GZIP_MAGIC1 0x8B

/* ESP32 chip ids (esp_image_header_t.chip_id) and their ESPHome names. */
static const struct {
	uint16_t id;
	const char *name;
} esp32_chips[] = {
    {0x0000, "ESP32"},    {0x0002, "ESP32-S2"}, {0x0005, "ESP32-C3"},
    {0x0009, "ESP32-S3"}, {0x000C, "ESP32-C2"}, {0x000D, "ESP32-C6"},
    {0x0010, "ESP32-H2"}, {0x0012, "ESP32-P4"}, {0x0017, "ESP32-C5"},
};

static const char *esp32_chip_name(uint16_t id)
{
	for (size_t i = 0; i < sizeof esp32_chips / sizeof esp32_chips[0]; i++)
		if (esp32_chips[i].id == id)
			return esp32_chips[i].name;
	return NULL;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int nf_esp_header_parse(const unsigned char *buf, size_t len, struct nf_esp_header *out)
{
	*out = (struct nf_esp_header){.format = NF_IMAGE_UNKNOWN, .family = NF_CHIP_UNKNOWN};
	if (buf == NULL || len < 2)
		return -1;
	if (buf[0] == GZIP_MAGIC0 && buf[1] == GZIP_MAGIC1) {
		out->format = NF_IMAGE_GZIP;
		return 0;
	}
	if (buf[0] != ESP_MAGIC || len < 4)
		return -1;
	out->format = NF_IMAGE_ESP;
	out->flash_mode = buf[2];
	out->flash_size_code = (uint8_t)(buf[3] >> 4);
	if (len < NF_ESP_HEADER_LEN)
		return 0;
	uint16_t chip = (uint16_t)(buf[12] | buf[13] << 8);
	bool reserved_zero = (buf[19] | buf[20] | buf[21] | buf[22]) == 0;
	uint32_t load = le32(buf + 8);
	if (reserved_zero && buf[23] <= 1 && esp32_chip_name(chip) != NULL) {
		out->family = NF_CHIP_ESP32;
		out->chip_id = chip;
	} else if ((load & 0xFFF00000u) == 0x40100000u) {
		out->family = NF_CHIP_ESP8266;
	}
	return 0;
}

uint64_t nf_esp_flash_bytes(enum nf_chip_family family, unsigned code)
{
	/* ESP8266 (the core's magicFlashChipSize): 0 512K, 1 256K, 2 1M,
	 * 3 2M, 4 4M, 8 8M, 9 16M. ESP32: 1 MB << code, up to 128 MB. */
	static const uint64_t esp8266[16] = {512u << 10, 256u << 10, 1u << 20, 2u << 20, 4u << 20,
	                                     0,          0,          0,        8u << 20, 16u << 20};
	if (code > 15)
		return 0;
	if (family == NF_CHIP_ESP8266)
		return esp8266[code];
	if (family == NF_CHIP_ESP32)
		return code <= 7 ? (uint64_t)1 << (20 + code) : 0;
	return 0;
}

const char *nf_esp_chip_family(const struct nf_esp_header *h)
{
	if (h->format != NF_IMAGE_ESP)
		return NULL;
	if (h->family == NF_CHIP_ESP8266)
		return "ESP8266";
	if (h->family == NF_CHIP_ESP32)
		return esp32_chip_name(h->chip_id);
	return NULL;
}
