"""neurosim's performance harness; run ``python -m benchmarks`` (see ``__main__``)."""
