"""test_releases.py's checks with the store on a real PostgreSQL
(pgcluster.py): the releases and audit tables, their identities, the
duplicate refused by the database's unique constraint and the delete's
transaction, on the other backend. One database per test.

Prints SKIPPED and passes only when the PostgreSQL server binaries are
missing."""
import unittest

import pgcluster
from fleetstore import psql
from test_releases import ReleasesTest


class PgReleasesTest(ReleasesTest):
    cluster = None
    bindir = None
    databases = 0

    @classmethod
    def setUpClass(cls):
        cls.bindir = pgcluster.find_bin()
        if cls.bindir is None:
            print("SKIPPED: PostgreSQL server binaries not found")
            raise unittest.SkipTest("PostgreSQL server binaries not found")
        cls.cluster = pgcluster.Cluster(cls.bindir)
        try:
            cls.cluster.init()
            cls.cluster.start()
        except Exception:
            cls.cluster.destroy()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.cluster is not None:
            cls.cluster.destroy()

    def store_url(self):
        PgReleasesTest.databases += 1
        name = "releases%d" % PgReleasesTest.databases
        psql(self.bindir, self.cluster.base + "/postgres", "CREATE DATABASE " + name)
        return "%s/%s" % (self.cluster.base, name)


del ReleasesTest  # run here on PostgreSQL only

if __name__ == "__main__":
    unittest.main()
