"""The pure-torch core: shared types, the clipped surrogate loss and the hook protocols it calls (``hooks``),
loss metrics as device tensors and their window reduction (``metrics``), group math and advantages,
chunked entropy, entropy-change estimators, IS correction. Imports nothing from ``methods``, the runtime,
OpenRLHF, the apps or the evaluation harness."""
