"""Resumed downloads: the simulated device (`nofuss device`, the POSIX port)
against the real nofussd, through the cutting proxy of test_device_faults.py
set to cut one firmware transfer at 50%. The device asks for the rest with
`Range: bytes=N-` and `If-Range: <the ETag nofussd gave>`, nofussd answers
206, and the update completes with the image fetched once in all: fewer
bytes than two full downloads. When the image is replaced on the server
between the cut and the resume, If-Range no longer matches: nofussd answers
200 with the new image, and the device starts over and commits that one."""
import hashlib
import os
import unittest

from test_device import DEVICE, DeviceTest, Device, flash_view, image_bytes, provision
from test_device_faults import FW_ONLY, Proxy

FW_SIZE = "256K"
IMAGE = "firmware/test-0.1.1.bin"


class ResumeTest(DeviceTest):
    rules = FW_ONLY

    def setUp(self):
        super().setUp()
        self.fw = image_bytes(self.tmp, "0.1.1", size=FW_SIZE)
        self.data.add_file(IMAGE, self.fw)
        self.start()
        self.proxy = Proxy(self.server.port)
        self.addCleanup(self.proxy.close)
        self.proxy.once = True
        self.proxy.fault = ("sketch", "cut", 50)
        flash = provision(os.path.join(self.tmp, "flash"))
        self.device = Device(flash, "http://127.0.0.1:%d/" % self.proxy.port)

    def update(self):
        """Runs the device until it is up to date; returns the two image
        exchanges (the cut one, the resumed one) and the run."""
        r = self.device.run("--until-up-to-date", "--max-checks", "3")
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.messages(), ["START", "UPDATING", "FIRMWARE_UPDATED", "RESET", "reboot",
                                        "START", "UPTODATE", "END"], str(r))
        self.assertEqual(r.boots[-1], ("b", "0.1.1", "0.1.0", DEVICE, "trial"), str(r))
        self.assertEqual(self.proxy.faults_done, 1)
        images = [x for x in self.proxy.log if x.header("x-ESP8266-mode") is not None]
        self.assertEqual(len(images), 2, str(r))
        first, second = images
        self.assertIsNone(first.header("Range"))
        self.assertEqual(first.status(), 200)
        return first, second, r

    def assert_committed(self, data):
        with open(os.path.join(self.device.flash, "slot-b.bin"), "rb") as f:
            self.assertEqual(hashlib.md5(f.read()).hexdigest(), hashlib.md5(data).hexdigest())
        view = flash_view(self.device.flash)
        self.assertEqual(view["state"]["active"], "b")
        self.assertEqual(view["new"], [])

    def test_cut_at_half_resumes(self):
        first, second, _ = self.update()
        size = len(self.fw)
        self.assertEqual(first.sent, size // 2)
        # The rest, asked for the version it began with.
        self.assertEqual(second.header("Range"), "bytes=%d-" % (size // 2))
        self.assertEqual(second.header("If-Range"), first.header("ETag", "response"))
        self.assertEqual(second.header("x-ESP8266-mode"), "sketch")
        self.assertEqual(second.status(), 206)
        self.assertEqual(second.header("Content-Range", "response"),
                         "bytes %d-%d/%d" % (size // 2, size - 1, size))
        self.assertEqual(second.sent, size - size // 2)
        # Fetched once in all: fewer bytes than two full downloads.
        self.assertEqual(first.sent + second.sent, size)
        self.assertLess(first.sent + second.sent, 2 * size)
        self.assert_committed(self.fw)

    def test_image_replaced_before_the_resume(self):
        newer = image_bytes(self.tmp, "0.1.1", size="192K")

        def replace():  # before the device sees the cut (the proxy closes after this)
            tmp = os.path.join(self.data.public, IMAGE + ".tmp")
            with open(tmp, "wb") as f:
                f.write(newer)
            os.rename(tmp, os.path.join(self.data.public, IMAGE))

        self.proxy.after_fault = replace
        first, second, _ = self.update()
        self.assertEqual(second.header("If-Range"), first.header("ETag", "response"))
        self.assertNotEqual(second.header("ETag", "response"), first.header("ETag", "response"))
        # If-Range no longer matches: the whole new image, begun again.
        self.assertEqual(second.status(), 200)
        self.assertIsNone(second.header("Content-Range", "response"))
        self.assertEqual(second.sent, len(newer))
        self.assert_committed(newer)


if __name__ == "__main__":
    unittest.main()
