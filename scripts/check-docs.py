#!/usr/bin/env python3
"""check-docs.py - every document the tree cites exists, with the sections cited.

Code comments, docs and scripts cite the project's documents by name:
`docs/PEERS.md section 6`, `PROTOCOL.md sections 1 and 2`, `PEERS.md
section 3.1`, a section sign and a number, or a Markdown link with an anchor.
A citation goes stale silently when a document is renamed, renumbered or never
committed, so this script checks them all and fails the build instead:

  - the document must be a tracked file: with a folder in front, that path
    (from the citing file's folder, or from the top); without one, in docs/,
    at the top (README.md), or next to the citing file;
  - each cited section N (or N.M) must have a heading `## N.` (`### N.M`) in
    it; an anchor (`#5-the-check-log`) must be the slug of one of its headings;
  - a section sign must follow a document name;
  - nothing may mention the folder that sits beside the repository on the
    developers' machines (dot-dot-slash "shared"): the tree must stand alone.

Usage: scripts/check-docs.py [-v] [ROOT]
ROOT defaults to the tree this script is in; -v lists every citation found.
Exit status: 0 all citations resolve; 1 something is wrong (each problem is
printed as FILE:LINE: what); 2 bad usage. Standard library only.
"""
import os
import posixpath
import re
import subprocess
import sys

# What is scanned: sources, scripts, docs, build files, man pages.
SUFFIXES = (".c", ".h", ".py", ".sh", ".md", ".ini", ".conf", ".service", ".cmake")
NAMES = ("CMakeLists.txt",)
MAN_PAGE = re.compile(r"\.[1-9]$")

SECTION_SIGN = "\u00a7"
NUM = r"\d+(?:\.\d+)*"
# Between a document's name and "section": blanks, or one line break followed
# by a comment leader (" * ", "# ", "// ", "; ", '.\" ').
GAP = r"[ \t]*(?:\n[ \t]*(?:\*(?!/)|//|#|;|\.\\\")?[ \t]*)?"
LIST = NUM + r"(?:" + GAP + r"(?:,|and|or|-|\u2013|to)" + GAP + SECTION_SIGN + r"?" + NUM + r")*"
CITATION = re.compile(
    r"(?<![\w/.:-])(?P<var>\$\{?\w+\}?/)?(?P<path>(?:[\w.-]+/)*)(?P<name>[A-Z][A-Z0-9_-]*\.md)(?![\w-])"
    r"(?:#(?P<anchor>[\w-]+))?"
    r"(?:[`*\])]{0,3}"  # closing Markdown: code, emphasis, link
    r"(?:" + GAP + r"[,(]?" + GAP + r"sections?" + GAP + r"(?P<words>" + LIST + r")"
    r"|" + GAP + SECTION_SIGN + r"(?P<sign>" + LIST + r")"
    r"|[ \t]+(?P<bare>" + NUM + r")(?![\w%-]|\.\d)))?")
SHARED = re.compile(r"\.\./shared\b|/work/[s]hared\b|\bshared/(?:fixtures|docs)\b"
                    r"|[\"']\.\.[\"'],\s*[\"']shared[\"']")  # a join of "..", then "shared"
HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
HEADING_NUMBER = re.compile(r"^(" + NUM + r")[.)]?(?:[ \t]|$)")
FENCE = re.compile(r"^[ \t]*(```|~~~)")


def tracked_files(root):
    """The repository's tracked files (git ls-files), or every file below
    root when root is not the top of a git work tree (skipping dot-folders
    and build*)."""
    def git(*args):
        return subprocess.run(["git", "-C", root] + list(args), check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    try:
        top = git("rev-parse", "--show-toplevel").decode().strip()
        if os.path.realpath(top) == os.path.realpath(root):
            out = git("ls-files", "-z").decode("utf-8", "replace")
            return sorted(p for p in out.split("\0") if p)
    except (OSError, subprocess.CalledProcessError):
        pass
    found = []
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.startswith("build"))
        rel = os.path.relpath(top, root)
        for f in files:
            found.append(f if rel == "." else posixpath.join(rel.replace(os.sep, "/"), f))
    return sorted(found)


def scanned(path, root):
    """Whether path (relative to root) is one of the files to check."""
    base = posixpath.basename(path)
    if base.endswith(SUFFIXES) or base in NAMES or MAN_PAGE.search(base):
        return True
    try:  # scripts without a suffix (.ci/run)
        with open(os.path.join(root, path), "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def slug(title):
    """GitHub's anchor for a heading: lower case, punctuation dropped,
    blanks to hyphens."""
    title = re.sub(r"\]\([^)]*\)", "", title.strip().lower())  # a link keeps its text
    return re.sub(r"[^\w\- ]", "", title).replace(" ", "-")


class Doc:
    """The section numbers and anchors of one Markdown document."""

    def __init__(self, text):
        self.sections, self.anchors, fenced = set(), set(), False
        for line in text.splitlines():
            if FENCE.match(line):
                fenced = not fenced
            m = None if fenced else HEADING.match(line)
            if m is None:
                continue
            title = m.group(2)
            number = HEADING_NUMBER.match(title)
            if number is not None and len(m.group(1)) >= 2:
                self.sections.add(number.group(1))
            anchor, n = slug(title), 1
            while anchor in self.anchors:  # GitHub numbers repeated headings
                anchor, n = "%s-%d" % (slug(title), n), n + 1
            self.anchors.add(anchor)


def section_list(text):
    """The section numbers named by a list such as "1, 2 and 5" or "1-5"."""
    out, span = [], False
    for token in re.findall(NUM + r"|-|\u2013|\bto\b", text.replace(SECTION_SIGN, "")):
        if token[0].isdigit():
            if span and out and out[-1].isdigit() and token.isdigit():
                out.extend(str(k) for k in range(int(out[-1]) + 1, int(token)))
            out.append(token)
        span = not token[0].isdigit()
    return out


class Checker:
    def __init__(self, root, verbose=False):
        self.root = root
        self.verbose = verbose
        self.files = tracked_files(root)
        self.known = set(self.files)
        self.docs = {}
        self.problems = []
        self.citations = 0

    def resolve(self, citing, prefix, name):
        """The tracked path a citation names, or None."""
        here = posixpath.dirname(citing)
        if prefix:
            candidates = [posixpath.join(here, prefix, name), posixpath.join(prefix, name)]
        else:
            candidates = [posixpath.join("docs", name), name, posixpath.join(here, name)]
        for c in candidates:
            c = posixpath.normpath(c)
            if c in self.known:
                return c
        return None

    def doc(self, path):
        if path not in self.docs:
            with open(os.path.join(self.root, path), encoding="utf-8", errors="replace") as f:
                self.docs[path] = Doc(f.read())
        return self.docs[path]

    def report(self, path, text, offset, what):
        line = text.count("\n", 0, offset) + 1
        self.problems.append("%s:%d: %s" % (path, line, what))

    def generated(self, m):
        """A path into something built at run time ("$LIB/README.md",
        "libnofuss/README.md"): only a docs/ path is a citation there."""
        prefix = m.group("path")
        if m.group("var"):
            return not prefix.startswith("docs/")
        top = prefix.split("/", 1)[0]
        return bool(prefix) and top not in (".", "..") and not any(
            k.startswith(top + "/") for k in self.known)

    def check_citation(self, path, text, m):
        if self.generated(m):
            return
        self.citations += 1
        cited = m.group("path") + m.group("name")
        target = self.resolve(path, m.group("path"), m.group("name"))
        if target is None:
            self.report(path, text, m.start(), "%s: no such document in the tree" % cited)
            return
        nums = m.group("words") or m.group("sign") or m.group("bare")
        doc = self.doc(target)
        if self.verbose:
            where = " ".join(section_list(nums)) if nums else "-"
            if m.group("anchor"):
                where += " #" + m.group("anchor")
            print("%s:%d: %s %s" % (path, text.count("\n", 0, m.start()) + 1, target, where))
        for n in section_list(nums) if nums else []:
            if n not in doc.sections:
                self.report(path, text, m.start(), "%s section %s: %s has no heading '%s %s.'"
                            % (cited, n, target, "##" if "." not in n else "###", n))
        anchor = m.group("anchor")
        if anchor and anchor not in doc.anchors:
            self.report(path, text, m.start(), "%s#%s: no heading in %s has that anchor"
                        % (cited, anchor, target))

    def check_file(self, path):
        try:
            with open(os.path.join(self.root, path), "rb") as f:
                data = f.read()
        except OSError:
            return  # listed by git but deleted in the work tree
        if b"\0" in data[:8192]:
            return
        text = data.decode("utf-8", "replace")
        covered = []
        for m in CITATION.finditer(text):
            self.check_citation(path, text, m)
            covered.append((m.start(), m.end()))
        for m in re.finditer(SECTION_SIGN, text):
            if not any(a <= m.start() < b for a, b in covered):
                self.report(path, text, m.start(),
                            "a section sign with no document before it: name the document")
        for m in SHARED.finditer(text):
            self.report(path, text, m.start(), "'%s' is outside the repository: "
                        "the tree must not read or cite it" % m.group(0))

    def run(self):
        for path in self.files:
            if scanned(path, self.root):
                self.check_file(path)
        return self.problems


def main(argv):
    args = argv[1:]
    verbose = "-v" in args
    args = [a for a in args if a != "-v"]
    usage = next(p for p in __doc__.split("\n\n") if p.startswith("Usage:"))
    if args[:1] in (["-h"], ["--help"]):
        print(usage)
        return 0
    if len(args) > 1 or (args and args[0].startswith("-")):
        print(usage, file=sys.stderr)
        return 2
    root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    if not os.path.isdir(root):
        print("check-docs: %s: not a folder" % root, file=sys.stderr)
        return 2
    checker = Checker(os.path.abspath(root), verbose)
    problems = checker.run()
    for p in problems:
        print(p)
    if problems:
        print("check-docs: %d problem(s) in %d citation(s)" % (len(problems), checker.citations))
        return 1
    print("check-docs: %d citation(s) checked, all resolve" % checker.citations)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
