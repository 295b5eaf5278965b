// basic.ino - a device that asks a NoFUSS server for updates every minute.
//
// Joins the WiFi network, then checks: with an update offered it installs
// the filesystem image, then the firmware, and restarts into it. Every
// message of the client is printed on the serial console. The API is the
// original NoFUSS client's, so sketches written for it build unchanged.
//
// Set the server, WiFi and identity below, or with -D flags
// (build_flags in platformio.ini).

#include <Arduino.h>
#include <ESP8266WiFi.h>
#include "NoFUSSClient.h"

#ifndef NOFUSS_SERVER
#define NOFUSS_SERVER "http://192.168.1.100:8080/" // where nofussd listens
#endif
#ifndef WIFI_SSID
#define WIFI_SSID "my-network"
#endif
#ifndef WIFI_PASS
#define WIFI_PASS "my-password"
#endif
#ifndef DEVICE
#define DEVICE "TEST" // the device name the server's rules match
#endif
#ifndef VERSION
#define VERSION "0.0.9" // this firmware's version
#endif
#ifndef BUILD
#define BUILD ""
#endif
#ifndef NOFUSS_INTERVAL
#define NOFUSS_INTERVAL 60000 // milliseconds between checks
#endif

// What each message means: docs/ESP8266.md in the nofuss sources.
void onNoFUSS(nofuss_t code) {
    switch (code) {
    case NOFUSS_START:
        Serial.printf("[NoFUSS] Start\n");
        break;
    case NOFUSS_UPTODATE:
        Serial.printf("[NoFUSS] Nothing for me\n");
        break;
    case NOFUSS_UPDATING:
        Serial.printf("[NoFUSS] Updating to %s (firmware: %s, filesystem: %s)\n",
                      NoFUSSClient.getNewVersion().c_str(),
                      NoFUSSClient.getNewFirmware().c_str(),
                      NoFUSSClient.getNewFileSystem().c_str());
        break;
    case NOFUSS_FILESYSTEM_UPDATED:
        Serial.printf("[NoFUSS] File System Updated\n");
        break;
    case NOFUSS_FIRMWARE_UPDATED:
        Serial.printf("[NoFUSS] Firmware Updated\n");
        break;
    case NOFUSS_RESET:
        Serial.printf("[NoFUSS] Resetting board\n");
        break;
    case NOFUSS_END:
        Serial.printf("[NoFUSS] End\n");
        break;
    case NOFUSS_NO_RESPONSE_ERROR:
        Serial.printf("[NoFUSS] No response: %s\n", NoFUSSClient.getErrorString().c_str());
        break;
    case NOFUSS_PARSE_ERROR:
        Serial.printf("[NoFUSS] Error parsing server response\n");
        break;
    case NOFUSS_FILESYSTEM_UPDATE_ERROR:
        Serial.printf("[NoFUSS] File System Update Error: %s\n",
                      NoFUSSClient.getErrorString().c_str());
        break;
    case NOFUSS_FIRMWARE_UPDATE_ERROR:
        Serial.printf("[NoFUSS] Firmware Update Error: %s\n",
                      NoFUSSClient.getErrorString().c_str());
        break;
    }
}

void setup() {
    Serial.begin(115200);
    Serial.println();
    Serial.printf("[MAIN] Device: %s\n", DEVICE);
    Serial.printf("[MAIN] Version: %s\n", VERSION);

    WiFi.mode(WIFI_STA);
    WiFi.begin(WIFI_SSID, WIFI_PASS);
    Serial.printf("[WIFI] Connecting to %s\n", WIFI_SSID);

    NoFUSSClient.setServer(NOFUSS_SERVER);
    NoFUSSClient.setDevice(DEVICE);
    NoFUSSClient.setVersion(VERSION);
    NoFUSSClient.setBuild(BUILD);
    NoFUSSClient.setInterval(NOFUSS_INTERVAL, NOFUSS_INTERVAL / 10);
    NoFUSSClient.onMessage(onNoFUSS);
}

void loop() {
    if (WiFi.status() == WL_CONNECTED) {
        NoFUSSClient.loop(); // handle() when a check is due
    }
    delay(10);
}
