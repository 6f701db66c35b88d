"""Memory: the measured ledger (`ledger.MemoryLedger`, bytes per category each step) and the FakeTensor
estimator (`estimate.estimate_memory`) that runs the same loop without allocating."""
