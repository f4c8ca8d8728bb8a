"""The pure-torch core: shared types, the clipped surrogate loss, chunked entropy, entropy-change
estimators and group advantages. Imports nothing from OpenRLHF, the apps or the evaluation harness."""
