"""test_releases.py's and test_rollouts_api.py's checks with the store on a
real PostgreSQL (pgcluster.py): the releases, audit and rollouts tables,
their identities, the duplicate refused by the database's unique
constraint, the delete's transaction and the rollouts' conditional moves,
on the other backend. One database per test.

Prints SKIPPED and passes only when the PostgreSQL server binaries are
missing."""
import unittest

import pgcluster
from fleetstore import psql
from test_releases import ReleasesTest
from test_rollouts_api import RolloutsApiTest


class PgStore:
    """A throw-away cluster for the class, a database for each test."""
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
        PgStore.databases += 1
        name = "releases%d" % PgStore.databases
        psql(self.bindir, self.cluster.base + "/postgres", "CREATE DATABASE " + name)
        return "%s/%s" % (self.cluster.base, name)


class PgReleasesTest(PgStore, ReleasesTest):
    pass


class PgRolloutsApiTest(PgStore, RolloutsApiTest):
    pass


del ReleasesTest, RolloutsApiTest  # run here on PostgreSQL only

if __name__ == "__main__":
    unittest.main()
