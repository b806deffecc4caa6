"""activations kernels: NumPy reference (to be filled)."""
__all__ = []
