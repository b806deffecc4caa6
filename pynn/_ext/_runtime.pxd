from pynn._ext._csrc cimport pynn_ctx

# The context every kernel call gets: thread count and instruction-set path in force now.
cdef pynn_ctx get_ctx() noexcept
