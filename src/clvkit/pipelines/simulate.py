"""Simulate transactions and write them, with the latent truth, to files."""

from __future__ import annotations

from pathlib import Path

from clvkit.data.simulate import SimulationParams, simulate_transactions
from clvkit.io.files import write_json, write_table


def simulate_to_files(
    n_customers: int, seed: int, output: str | Path, params: SimulationParams | None = None
) -> dict[str, Path]:
    """Write transactions to ``output`` and the truth to ``<stem>_truth`` / ``<stem>_params.json``."""
    output = Path(output)
    simulation = simulate_transactions(n_customers, seed, params)
    truth_path = output.with_name(f"{output.stem}_truth{output.suffix}")
    params_path = output.with_name(f"{output.stem}_params.json")
    write_table(simulation.transactions, output, index=False)
    write_table(simulation.truth, truth_path, index=True)
    write_json({"seed": seed, "n_customers": n_customers, **simulation.params.to_dict()}, params_path)
    return {"transactions": output, "truth": truth_path, "params": params_path}
