"""`make bench`: ratios measured side by side in one run (ours vs the raw operation, same machine)."""
