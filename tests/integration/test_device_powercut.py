"""A power cut at every flash operation (the MCUboot simulator's idea).

First count the flash operations of a whole update (filesystem, then
firmware, the reboot, the trial boot and its confirmation) with the POSIX
port's fault injector armed at nothing. Then for every N from 1 to that
count: a fresh flash directory at 0.1.0, run the device with the power cut
right before operation N (it dies with exit status 6), check with an
independent reader that the flash holds a valid state, a valid confirmed
firmware (0.1.0 or 0.1.1) and a whole filesystem (old or new, never
partial), then power it on again without a cut: it must boot a valid image
and complete the update to 0.1.1."""
import os
import shutil
import time
import unittest

from test_device import (DEVICE, POWER_CUT_EXIT, DeviceTest, Device, flash_view, image_bytes,
                         provision)

MAX_OPERATIONS = 200   # a whole update takes ~50; more means the test would crawl
VERSIONS = ("0.1.0", "0.1.1")
RULES = [{"origin": {"device": DEVICE, "max": "0.1.0"},
          "target": {"version": "0.1.1", "firmware": "/firmware/test-0.1.1.bin",
                     "spiffs": "/firmware/test-0.1.1-fs.bin"}}]
UPDATE_ARGS = ("--until-up-to-date", "--max-checks", "3", "--max-boots", "4")


class PowerCutTest(DeviceTest):
    rules = RULES

    def setUp(self):
        super().setUp()
        self.data.add_file("firmware/test-0.1.1.bin", image_bytes(self.tmp, "0.1.1"))
        self.data.add_file("firmware/test-0.1.1-fs.bin", image_bytes(self.tmp, "0.1.1", "--fs"))
        self.template = provision(os.path.join(self.tmp, "template"))
        self.start()

    def fresh(self, name):
        flash = os.path.join(self.tmp, name)
        shutil.rmtree(flash, ignore_errors=True)
        shutil.copytree(self.template, flash)
        return Device(flash, self.url())

    def assert_sane(self, flash, context):
        """What a bootloader would find: a valid state, a valid image in the
        confirmed slot, a trial slot (if any) holding a valid image, a whole
        filesystem of either version."""
        view = flash_view(flash)
        state = view["state"]
        active = view["slot-%s.bin" % state["active"]]
        self.assertIsNotNone(active, context)
        self.assertEqual(active[0], "firmware", context)
        self.assertIn(active[1], VERSIONS, context)
        if state["trial"] != "-":
            self.assertEqual(view["slot-%s.bin" % state["trial"]][:2], ("firmware", "0.1.1"),
                             context)
        self.assertIsNotNone(view["fs.bin"], context)
        self.assertEqual(view["fs.bin"][0], "filesystem", context)
        self.assertIn(view["fs.bin"][1], VERSIONS, context)

    def test_power_cut_at_every_flash_operation(self):
        full = self.fresh("count").run(*UPDATE_ARGS)
        self.assertEqual(full.rc, 0, str(full))
        self.assertEqual(full.boots[-1], ("b", "0.1.1", "0.1.1", DEVICE, "trial"), str(full))
        total = full.halt[2]
        self.assertGreater(total, 10, str(full))
        self.assertLess(total, MAX_OPERATIONS, str(full))

        started = time.monotonic()
        for n in range(1, total + 1):
            with self.subTest(cut_at=n):
                device = self.fresh("cut")
                cut = device.run(*UPDATE_ARGS, power_cut_at=n)
                context = "power cut at %d of %d\n%s" % (n, total, cut)
                self.assertEqual(cut.rc, POWER_CUT_EXIT, context)
                self.assertRegex(cut.lines[-1], r"^\[sim\] power cut before flash operation "
                                                r"%d \(" % n, context)
                self.assert_sane(device.flash, context)

                again = device.run(*UPDATE_ARGS)
                context += "\nthen without a cut: %s" % again
                self.assertEqual(again.rc, 0, context)
                slot, version, fs, _, _ = again.boots[0]
                self.assertIn(version, VERSIONS, context)
                self.assertIn(fs, VERSIONS, context)
                self.assertEqual(again.boots[-1][1:3], ("0.1.1", "0.1.1"), context)
                self.assertEqual(again.messages()[-3:], ["START", "UPTODATE", "END"], context)
                view = flash_view(device.flash)
                self.assertEqual(view["slot-%s.bin" % view["state"]["active"]][:2],
                                 ("firmware", "0.1.1"), context)
                self.assertEqual(view["fs.bin"][:2], ("filesystem", "0.1.1"), context)
                self.assertEqual(view["state"]["trial"], "-", context)
                self.assertEqual(view["new"], [], context)
        # Keep the sweep fast enough to run on every build.
        self.assertLess(time.monotonic() - started, 300.0)


if __name__ == "__main__":
    unittest.main()
