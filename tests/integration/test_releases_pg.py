"""test_releases.py's and test_rollouts_api.py's checks with the store on a
real PostgreSQL (pgcluster.py): the releases, audit and rollouts tables,
their identities, the duplicate refused by the database's unique
constraint, the delete's transaction and the rollouts' conditional moves,
on the other backend. One database per test.

Prints SKIPPED and passes only when the PostgreSQL server binaries are
missing."""
import unittest

import pgcluster
from test_releases import ReleasesTest
from test_rollouts_api import RolloutsApiTest


class PgStore(pgcluster.ClusterPerClass):
    """A throw-away cluster for the class, a database for each test."""

    def store_url(self):
        return self.new_database("releases")


class PgReleasesTest(PgStore, ReleasesTest):
    pass


class PgRolloutsApiTest(PgStore, RolloutsApiTest):
    pass


del ReleasesTest, RolloutsApiTest  # run here on PostgreSQL only

if __name__ == "__main__":
    unittest.main()
