"""Hand-written CPU kernels, each a C source beside the Python module that builds, loads and wraps it
as a ``torch.library`` custom op (with autograd, vmap and ``torch.compile`` support)."""
