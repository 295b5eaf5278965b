"""Tests of scripts/check-docs.py, the citation checker, run as a program on
small temporary trees: a tree whose citations all resolve passes, and each
kind of stale citation (missing document, missing section, bad anchor, a
section sign with no document, a mention of the folder beside the
repository) makes it fail with the file and line.

Document names are assembled at run time (NAME + MD) so that this file does
not itself cite documents the real tree lacks: the checker scans it too.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "..", "..", "scripts", "check-docs.py")
MD = ".md"
GOOD = "GOOD" + MD
OLD = "OLD" + MD
SIGN = "\u00a7"
BESIDE = ".." + "/shared"

GOOD_TEXT = """# A good document

## 1. One

### 1.2 A sub-section

## 2. Two words here

```
## 9. Not a heading: inside a code fence
```
"""


class Tree:
    """A temporary tree: files from a dict, optionally a git work tree with
    only some of them added."""

    def __init__(self, files, git_add=None):
        self.path = tempfile.mkdtemp(prefix="nofuss-check-docs-")
        for name, text in files.items():
            full = os.path.join(self.path, name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)
        if git_add is not None:
            subprocess.run(["git", "init", "-q", self.path], check=True, timeout=30)
            subprocess.run(["git", "-C", self.path, "add", "--"] + git_add, check=True, timeout=30)

    def check(self, *args):
        r = subprocess.run([sys.executable, CHECKER] + list(args) + [self.path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=60)
        return r.returncode, r.stdout

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class CheckDocsTest(unittest.TestCase):

    def run_tree(self, files, git_add=None):
        files = dict({"docs/" + GOOD: GOOD_TEXT, "README" + MD: "# Top\n"}, **files)
        tree = Tree(files, git_add)
        self.addCleanup(tree.cleanup)
        return tree.check()

    def assert_fails(self, files, *expected, git_add=None):
        rc, out = self.run_tree(files, git_add)
        self.assertEqual(rc, 1, out)
        for line in expected:
            self.assertIn(line, out)
        return out

    def test_good_citations_pass(self):
        rc, out = self.run_tree({
            "src/a.c": "/*\n"
                       " * %s section 1, docs/%s sections 1 and 2, %s sections 1-2.\n"
                       " * (docs/%s section\n"
                       " * 1.2) wrapped; %s %s2; %s 2; see README%s.\n"
                       " * CURLOPT_PROTOCOLS_STR is no citation, nor is lower%s.\n"
                       " */\n" % (GOOD, GOOD, GOOD, GOOD, GOOD, SIGN, GOOD, MD, MD),
            "tools/b.py": "# docs/%s, section 2\n" % GOOD,
            "docs/other.md": "See [%s](%s#2-two-words-here) and [top](../README%s) section\n"
                             "nothing; [%s](%s) section 1.\n" % (GOOD, GOOD, MD, GOOD, GOOD),
            "docs/man/tool.1": ".IR docs/%s .\n" % GOOD,
        })
        self.assertEqual(rc, 0, out)
        self.assertIn("all resolve", out)

    def test_missing_document(self):
        out = self.assert_fails({"src/a.c": "int x;\n\n/* %s section 2 */\n" % OLD},
                                "src/a.c:3: %s: no such document" % OLD)
        self.assertNotIn("section 2", out, "no section check on a missing document")

    def test_bare_name_of_a_missing_document(self):
        self.assert_fails({"scripts/t.sh": "#!/bin/sh\n# see %s\n" % OLD},
                          "scripts/t.sh:2: %s: no such document" % OLD)

    def test_missing_sections(self):
        self.assert_fails({"src/a.h": "/* docs/%s section 7 */\n"
                                      "/* %s sections 1-3 */\n"
                                      "/* %s section 1.5 */\n"
                                      "/* %s 9 */\n" % (GOOD, GOOD, GOOD, GOOD)},
                          "src/a.h:1: docs/%s section 7: docs/%s has no heading '## 7.'" % (GOOD, GOOD),
                          "src/a.h:2: %s section 3:" % GOOD,
                          "src/a.h:3: %s section 1.5: docs/%s has no heading '### 1.5.'" % (GOOD, GOOD),
                          "src/a.h:4: %s section 9:" % GOOD)

    def test_wrapped_citation_is_reported_where_it_starts(self):
        self.assert_fails({"src/a.c": "\n/* the push protocol (docs/%s section\n * 8) */\n" % GOOD},
                          "src/a.c:2: docs/%s section 8:" % GOOD)

    def test_bad_anchor(self):
        self.assert_fails({"docs/x.md": "[it](%s#3-three)\n" % GOOD},
                          "docs/x.md:1: %s#3-three: no heading" % GOOD)

    def test_section_sign_without_a_document(self):
        self.assert_fails({"docs/x.md": "intro\n### Path form (%s1)\n" % SIGN},
                          "docs/x.md:2: a section sign with no document")

    def test_mentions_of_the_folder_beside_the_tree(self):
        self.assert_fails({"tests/h.py": 'F = "%s/fixtures"\n'
                                         'G = os.path.join(TOP, "..", "%s")\n' % (BESIDE, "sha" "red"),
                           "CMakeLists.txt": "# data in %s\n" % BESIDE},
                          "tests/h.py:1: '%s'" % BESIDE,
                          "tests/h.py:2: '\"..\", \"shared\"'",
                          "CMakeLists.txt:1:")

    @unittest.skipUnless(shutil.which("git"), "needs git")
    def test_only_tracked_files_count(self):
        files = {"docs/NEW" + MD: "## 1. New\n",
                 "src/a.c": "/* NEW%s section 1 */\n" % MD,
                 "src/untracked.c": "/* %s */\n" % OLD}
        out = self.assert_fails(files, "src/a.c:1: NEW%s: no such document" % MD,
                                git_add=["docs/" + GOOD, "src/a.c"])
        self.assertNotIn("untracked.c", out)

    def test_usage(self):
        tree = Tree({})
        self.addCleanup(tree.cleanup)
        rc, out = tree.check("--bogus")
        self.assertEqual(rc, 2)
        self.assertIn("Usage:", out)


if __name__ == "__main__":
    unittest.main()
