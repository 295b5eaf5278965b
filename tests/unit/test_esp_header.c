/*
 * test_esp_header.c - unit tests for esp_header.c (what an image's first
 * bytes say) and nf_stock_fits (stockindex.c: never offer what cannot
 * fit, docs/PROTOCOL.md section 5.4).
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "nofussd.h"

/* An ESP8266 image: first segment loaded at 0x40100000 (IRAM). */
static const unsigned char esp8266_1m[NF_ESP_HEADER_LEN] = {
    0xE9, 3, 2, 0x20, 0, 0x10, 0x10, 0x40, 0x00, 0x00, 0x10, 0x40, 0, 4, 0, 0};
/* An ESP32-C3 image, 4 MB: extended header with chip id 5. */
static const unsigned char esp32c3_4m[NF_ESP_HEADER_LEN] = {
    0xE9, 6, 2, 0x20, 0x60, 0x12, 0x08, 0x40, 0xEE, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static void test_esp8266(void **state)
{
	struct nf_esp_header h;

	(void)state;
	assert_int_equal(nf_esp_header_parse(esp8266_1m, sizeof esp8266_1m, &h), 0);
	assert_int_equal(h.format, NF_IMAGE_ESP);
	assert_int_equal(h.family, NF_CHIP_ESP8266);
	assert_int_equal(h.flash_mode, 2);
	assert_int_equal(h.flash_size_code, 2);
	assert_string_equal(nf_esp_chip_family(&h), "ESP8266");
	assert_int_equal(nf_esp_flash_bytes(NF_CHIP_ESP8266, 2), 1u << 20);
	assert_int_equal(nf_esp_flash_bytes(NF_CHIP_ESP8266, 0), 512u << 10);
	assert_int_equal(nf_esp_flash_bytes(NF_CHIP_ESP8266, 1), 256u << 10);
	assert_int_equal(nf_esp_flash_bytes(NF_CHIP_ESP8266, 4), 4u << 20);
	assert_int_equal(nf_esp_flash_bytes(NF_CHIP_ESP8266, 9), 16u << 20);
	assert_int_equal(nf_esp_flash_bytes(NF_CHIP_ESP8266, 5), 0); /* no such code */
}

static void test_esp32(void **state)
{
	struct nf_esp_header h;

	(void)state;
	assert_int_equal(nf_esp_header_parse(esp32c3_4m, sizeof esp32c3_4m, &h), 0);
	assert_int_equal(h.family, NF_CHIP_ESP32);
	assert_int_equal(h.chip_id, 5);
	assert_string_equal(nf_esp_chip_family(&h), "ESP32-C3");
	/* ESP32 codes: 1 MB << code. */
	assert_int_equal(nf_esp_flash_bytes(NF_CHIP_ESP32, 2), 4u << 20);
	assert_int_equal(nf_esp_flash_bytes(NF_CHIP_ESP32, 0), 1u << 20);
	assert_int_equal(nf_esp_flash_bytes(NF_CHIP_UNKNOWN, 2), 0);
}

static void test_gzip_short_and_garbage(void **state)
{
	static const unsigned char gz[] = {0x1F, 0x8B, 8, 0};
	struct nf_esp_header h;

	(void)state;
	assert_int_equal(nf_esp_header_parse(gz, sizeof gz, &h), 0);
	assert_int_equal(h.format, NF_IMAGE_GZIP);
	assert_null(nf_esp_chip_family(&h));
	/* Four bytes: the size code, but no family. */
	assert_int_equal(nf_esp_header_parse(esp8266_1m, 4, &h), 0);
	assert_int_equal(h.family, NF_CHIP_UNKNOWN);
	assert_int_equal(h.flash_size_code, 2);
	assert_int_equal(nf_esp_header_parse(esp8266_1m, 1, &h), -1);
	assert_int_equal(nf_esp_header_parse((const unsigned char *)"PK\3\4", 4, &h), -1);
	assert_int_equal(h.format, NF_IMAGE_UNKNOWN);
}

static void test_fits(void **state)
{
	struct nf_image_info img = {.path = "/fw.bin", .present = true, .size = 612 * 1024};
	char reason[NF_ERR_LEN];

	(void)state;
	nf_esp_header_parse(esp8266_1m, sizeof esp8266_1m, &img.hdr);
	assert_false(
	    nf_stock_fits(&img, NF_CHIP_ESP8266, 480 * 1024, 0, false, reason, sizeof reason));
	assert_string_equal(reason, "image 612 KiB, 480 KiB free");
	/* Not for filesystem images, and nothing reported is nothing tested. */
	assert_true(
	    nf_stock_fits(&img, NF_CHIP_ESP8266, 480 * 1024, 0, true, reason, sizeof reason));
	assert_true(nf_stock_fits(&img, NF_CHIP_ESP8266, 0, 0, false, reason, sizeof reason));
	/* Exactly the free space fits; a byte more does not. */
	assert_true(
	    nf_stock_fits(&img, NF_CHIP_ESP8266, img.size, 0, false, reason, sizeof reason));
	img.size++;
	assert_false(
	    nf_stock_fits(&img, NF_CHIP_ESP8266, img.size - 1, 0, false, reason, sizeof reason));
	assert_string_equal(reason, "image 613 KiB, 612 KiB free");
	/* Built for 1 MB: fits 1 MB, not 512 KB. */
	assert_true(
	    nf_stock_fits(&img, NF_CHIP_ESP8266, 0, 1u << 20, false, reason, sizeof reason));
	assert_false(
	    nf_stock_fits(&img, NF_CHIP_ESP8266, 0, 512u << 10, false, reason, sizeof reason));
	assert_string_equal(reason, "image built for 1024 KiB flash, chip has 512 KiB");
	/* The image's own family wins over the asker's: the ESP32-C3 image
	 * codes 4 MB with the same nibble. */
	nf_esp_header_parse(esp32c3_4m, sizeof esp32c3_4m, &img.hdr);
	assert_false(
	    nf_stock_fits(&img, NF_CHIP_ESP8266, 0, 2u << 20, false, reason, sizeof reason));
	assert_string_equal(reason, "image built for 4096 KiB flash, chip has 2048 KiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_esp8266),
	    cmocka_unit_test(test_esp32),
	    cmocka_unit_test(test_gzip_short_and_garbage),
	    cmocka_unit_test(test_fits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
