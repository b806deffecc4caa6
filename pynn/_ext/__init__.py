"""Private Cython layer: thin typed wrappers over csrc/. Use pynn.ops, not this package."""
