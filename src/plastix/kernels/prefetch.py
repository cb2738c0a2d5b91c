"""A cache prefetch hint for compiled CPU kernels.

``prefetch(arr, i, k)`` asks the CPU to start loading the cache line that holds ``arr[i, k]`` (a 2-D
array) and returns at once; it never faults and has no effect on results.  Row kernels that touch a few
random synapses per row (random turnover) are bound by memory latency, not by arithmetic: issuing the
next rows' loads early lets their cache misses overlap with this row's work.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, arr, i, k):
    """Prefetch ``arr[i, k]`` for writing, high temporal locality (llvm.prefetch)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and isinstance(i, types.Integer)
            and isinstance(k, types.Integer)):
        return None
    sig = types.void(arr, i, k)

    def codegen(context, builder, signature, args):
        aty, ity, kty = signature.args
        a, ii, kk = args
        ary = context.make_array(aty)(context, builder, a)
        idx = [context.cast(builder, ii, ity, types.intp), context.cast(builder, kk, kty, types.intp)]
        ptr = cgutils.get_item_pointer(context, builder, aty, ary, idx, wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # (address, rw = 1: the row code writes these lines, locality = 3: keep in all levels, data cache)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen
