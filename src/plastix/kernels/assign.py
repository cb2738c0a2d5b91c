"""``fill(dst, value)``: every element of the 1-D array ``dst`` set to ``value`` (an array of the same
length, or a scalar), for compiled global phases (``rows.x = expr``).  In Numba it is an element loop: a
slice assignment ``dst[:] = value`` would pull in the broadcasting checks and their error formatting,
seconds of compilation per generated module."""
from __future__ import annotations

from numba import types
from numba.extending import overload


def fill(dst, value) -> None:
    dst[:] = value


@overload(fill)
def _fill_compiled(dst, value):
    if isinstance(value, types.Array):
        def impl(dst, value):
            if value.shape[0] != dst.shape[0]:
                raise ValueError("rows.<name> = array: the array must have one value per row")
            for i in range(dst.shape[0]):
                dst[i] = value[i]
        return impl

    def impl_scalar(dst, value):
        for i in range(dst.shape[0]):
            dst[i] = value
    return impl_scalar
