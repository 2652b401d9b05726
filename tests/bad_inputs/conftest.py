"""The bad-input corpus: one trained model (session), input generators, and the CLI runner.

Each case in ``cases/*.yaml`` names the files to create (literal text or a generator below), and
for ``train`` and/or ``predict`` the arguments, the expected exit code and a regex the output
must match. Placeholders: ``{home}`` (the trained home: ``sim.csv``, ``sim.yaml``, the MLflow
store) and ``{case}`` (the case's own directory, the working directory of the commands).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.pipelines.conftest import MlflowHome, make_home

MODEL_URI = "models:/badinputs@champion"
#: The session model records this date format (issue 8: predict --config must not use it).
TRAINED_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
SIM_CONFIG = f"""\
data:
  source: sim.csv
  date_format: "{TRAINED_DATE_FORMAT}"
  time_unit: W
  quarantine_path: quarantine.csv
clv:
  horizon_months: 6
mlflow:
  experiment: badinputs
  registered_model: badinputs
"""


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> MlflowHome:
    """Simulated transactions (800 customers, ISO timestamps) and one registered model."""
    home = make_home(tmp_path_factory.mktemp("badinputs"))
    home.clvkit("data", "simulate", "--customers", "800", "--seed", "1", "--output", "sim.csv")
    (home.path / "sim.yaml").write_text(SIM_CONFIG, encoding="utf-8")
    home.clvkit("train", "--config", "sim.yaml")
    return home


def _sim(home: Path) -> pd.DataFrame:
    return pd.read_csv(home / "sim.csv", dtype={"customer_id": str, "timestamp": str})


def _mixed_dates(home: Path) -> pd.DataFrame:
    """ISO, mm/dd/yyyy and dd/mm/yyyy in one column (the issue's file)."""
    frame = _sim(home)
    stamps = pd.to_datetime(frame["timestamp"])
    rng = np.random.default_rng(5)
    pick = rng.random(len(frame))
    frame.loc[pick < 0.04, "timestamp"] = stamps[pick < 0.04].dt.strftime("%m/%d/%Y")
    dmy = (pick >= 0.04) & (pick < 0.08)
    frame.loc[dmy, "timestamp"] = stamps[dmy].dt.strftime("%d/%m/%Y")
    return frame


def _ambiguous_dates(home: Path) -> pd.DataFrame:
    frame = _sim(home)
    stamps = pd.to_datetime(frame["timestamp"])
    keep = stamps.dt.day <= 12
    return frame[keep].assign(timestamp=stamps[keep].dt.strftime("%m/%d/%Y"))


def _future_rows(home: Path) -> pd.DataFrame:
    """Ten rows dated 2031-05-05 for existing customers (the issue: CLV 68,686 -> 601)."""
    frame = _sim(home)
    extra = frame.drop_duplicates("customer_id").head(10).assign(timestamp="2031-05-05 10:00:00")
    return pd.concat([frame, extra], ignore_index=True)


def _absurd_amounts(home: Path) -> pd.DataFrame:
    frame = _sim(home).astype({"amount": object})
    frame.loc[[3, 17, 40], "amount"] = ["1e300", "-5e13", "2e12"]
    return frame


def _infinite_amounts(home: Path) -> pd.DataFrame:
    frame = _sim(home).astype({"amount": object})
    frame.loc[[5, 6], "amount"] = ["inf", "-inf"]
    return frame


def _date_only(home: Path) -> pd.DataFrame:
    frame = _sim(home)
    return frame.assign(timestamp=pd.to_datetime(frame["timestamp"]).dt.strftime("%Y-%m-%d"))


def _latin1_ids(home: Path) -> pd.DataFrame:
    frame = _sim(home)
    return frame.assign(customer_id=frame["customer_id"].str.replace("C00", "José-", regex=False))


GENERATORS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "sim": _sim, "mixed_dates": _mixed_dates, "ambiguous_dates": _ambiguous_dates, "future_rows": _future_rows,
    "absurd_amounts": _absurd_amounts, "infinite_amounts": _infinite_amounts, "date_only": _date_only,
    "latin1_ids": _latin1_ids,
}


def make_file(case_dir: Path, home: Path, name: str, spec: dict) -> None:
    """Create one input file of a case from its spec (see the module docstring)."""
    path = case_dir / name
    if spec.get("directory"):
        path.mkdir(parents=True)
        return
    if "copy" in spec:
        shutil.copy(home / spec["copy"], path)
        return
    if "text" in spec:
        path.write_bytes(spec["text"].format(home=home, case=case_dir).encode(spec.get("encoding", "utf-8")))
    else:
        frame = GENERATORS[spec["generator"]](home)
        if path.suffix == ".xlsx":
            frame.to_excel(path, index=False)
        else:
            frame.to_csv(path, index=False, sep=spec.get("sep", ","), encoding=spec.get("encoding", "utf-8"))
    if "mode" in spec:
        path.chmod(int(str(spec["mode"]), 8))
