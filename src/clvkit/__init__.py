"""clvkit: customer lifetime value from raw transactions.

Importing the package does no work: submodules are imported on use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
