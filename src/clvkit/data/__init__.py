"""Transaction data: validation at the boundary and a seeded simulator (pure)."""
