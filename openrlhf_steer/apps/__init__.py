"""Applications on top of the library: the `openrlhf-steer` CLI, the training launcher entry and the CPU demo."""
