"""test_rollouts_controls.py's checks with the store on a real PostgreSQL
(pgcluster.py): windows and rates, the rollout counts' grouped query and
its per-phase sums, pins and exclusions with the pinned release's version
read in the devices' query, and the CLI, on the other backend. Rows are
written and read with psql instead of sqlite3. One database per test.

Prints SKIPPED and passes only when the PostgreSQL server binaries are
missing."""
import re
import unittest

import pgcluster
from fleetstore import psql
from test_rollouts_controls import (CountsTest, DeviceControlsTest, RolloutCliTest,
                                    WindowRateTest)


def literal(v):
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def bind(text, args):
    """text with each ? replaced by the next of args as an SQL literal
    (the tests' own values: integers and MACs)."""
    values = iter(args)
    return re.sub(r"\?", lambda m: literal(next(values)), text)


class PgStore(pgcluster.ClusterPerClass):
    """A throw-away cluster for the class, a database for each test."""

    def store_url(self):
        self.pg_url = self.new_database("controls")
        return self.pg_url

    def sql(self, statements):
        psql(self.bindir, self.pg_url,
             "BEGIN; " + "; ".join(bind(t, a) for t, a in statements) + "; COMMIT")

    def query(self, text, args=()):
        return [tuple(int(v) if re.fullmatch(r"-?\d+", v) else v for v in row)
                for row in psql(self.bindir, self.pg_url, bind(text, args))]


class PgWindowRateTest(PgStore, WindowRateTest):
    pass


class PgCountsTest(PgStore, CountsTest):
    pass


class PgDeviceControlsTest(PgStore, DeviceControlsTest):
    pass


class PgRolloutCliTest(PgStore, RolloutCliTest):
    pass


del WindowRateTest, CountsTest, DeviceControlsTest, RolloutCliTest  # run here on PostgreSQL only

if __name__ == "__main__":
    unittest.main()
