"""One real local Spark session for every Spark test (start-up costs ~20 s, paid once)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """A local[2] Spark session: UI off, loopback only, this interpreter for Python workers.

    Two shuffle partitions: the test tables are small, and task start-up dominates.
    """
    from clvkit.io.spark import spark_session

    with warnings.catch_warnings():  # pyspark warns that pandas >= 3 is not fully supported
        warnings.simplefilter("ignore", FutureWarning)
        session = spark_session("local[2]", {"spark.driver.memory": "1g"}, shuffle_partitions=2)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
