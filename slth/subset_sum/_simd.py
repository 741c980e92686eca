"""Vector merges of sorted int64 lists, written as LLVM IR through numba intrinsics.

Two widths are emitted from the same generator: eight lanes (``<8 x i64>``, one
AVX-512 register; :func:`simd_merge`, :func:`simd_merge2`) and four lanes
(``<4 x i64>``, one AVX2 register; :func:`simd_merge4`, :func:`simd_merge2_4`).
Which one the solver runs is :func:`slth.subset_sum.variants.merge_variant`.

The scalar branch-free merge (``_kernels._merge_step``) emits one element per
compare and is bound by its dependency chain (load, compare, index update),
about 5 cycles per element. Here the two lists are merged eight elements at a
time (the SIMD merge of Inoue et al., PACT 2007): the eight smallest of two
sorted 8-vectors come out of a bitonic merge network (one reversal, a
half-cleaner and three compare-exchange stages, all min/max and shuffles), the
eight largest stay in a register, and the next 8-block is loaded from the list
whose head is smaller. Nothing branches on the data. Two independent merges
run interleaved in one loop so that their dependency chains overlap.

The IR is generic LLVM vector code (``<8 x i64>``, ``icmp``/``select``,
``shufflevector``): LLVM lowers it to AVX-512 where the CPU has it and to
narrower vectors elsewhere, so it runs on any machine numba supports.

Contract of both intrinsics: ``size`` is a multiple of 8 and at least 8; the
list S = ``buf[src:src + size]`` is ascending and is merged with S + x, whose
blocks are read from S and shifted in registers (no shifted copy is stored,
which keeps the working set of the large levels smaller); the output
``buf[dst:dst + 2 size]`` does not overlap S; the slot ``buf[src + size]`` is
free (a sentinel 2^62 is written there so that an exhausted list is never
chosen; 2^62 + x still exceeds every element of S because |S| + |x| is at
most 2^61 + n under :func:`slth.subset_sum._kernels.quantize`).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
_SENTINEL = ir.Constant(_I64, 1 << 62)


def _vec(width: int) -> ir.VectorType:
    return ir.VectorType(_I64, width)


def _mask(indices: list[int]) -> ir.Constant:
    return ir.Constant(ir.VectorType(_I32, len(indices)), indices)


def _minmax(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> tuple[ir.Value, ir.Value]:
    lt = builder.icmp_signed("<", a, b)
    return builder.select(lt, a, b), builder.select(lt, b, a)


def _bitonic_sort(builder: ir.IRBuilder, x: ir.Value, w: int) -> ir.Value:
    """Sort a bitonic w-vector ascending: compare-exchange at distances w/2, ..., 1."""
    undef = ir.Constant(_vec(w), ir.Undefined)
    d = w // 2
    while d:
        partner = builder.shuffle_vector(x, undef, _mask([i ^ d for i in range(w)]))
        lo, hi = _minmax(builder, x, partner)
        x = builder.shuffle_vector(lo, hi, _mask([i if i & d == 0 else w + i for i in range(w)]))
        d //= 2
    return x


def _merge2w(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, w: int
             ) -> tuple[ir.Value, ir.Value]:
    """(w smallest, w largest) of two ascending w-vectors, each ascending."""
    undef = ir.Constant(_vec(w), ir.Undefined)
    rb = builder.shuffle_vector(b, undef, _mask(list(range(w - 1, -1, -1))))
    lo, hi = _minmax(builder, a, rb)  # half-cleaner of the bitonic a ++ reversed(b)
    return _bitonic_sort(builder, lo, w), _bitonic_sort(builder, hi, w)


def _emit_merges(builder: ir.IRBuilder, merges: list[tuple[ir.Value, ir.Value, ir.Value]],
                 size: ir.Value, w: int = 8) -> None:
    """Emit one loop running every (S, OUT, x) merge of S with S + x, ``size`` + ``size``.

    ``w`` lanes per vector (8 or 4); ``size`` a multiple of ``w``, at least ``w``.
    """
    V = _vec(w)
    eight = ir.Constant(_I64, w)
    zero = ir.Constant(_I64, 0)

    def load8(ptr: ir.Value) -> ir.Value:
        return builder.load(builder.bitcast(ptr, V.as_pointer()), align=8)

    def store8(ptr: ir.Value, v: ir.Value) -> None:
        builder.store(v, builder.bitcast(ptr, V.as_pointer()), align=8)

    state = []
    for S, out, x in merges:
        builder.store(_SENTINEL, builder.gep(S, [size]))
        xv = builder.insert_element(ir.Constant(V, ir.Undefined), x, ir.Constant(_I32, 0))
        xv = builder.shuffle_vector(xv, ir.Constant(V, ir.Undefined), _mask([0] * w))
        va = cgutils.alloca_once(builder, V)
        vb = cgutils.alloca_once(builder, V)
        ip = cgutils.alloca_once(builder, _I64)
        jq = cgutils.alloca_once(builder, _I64)
        builder.store(load8(S), va)
        builder.store(builder.add(load8(S), xv), vb)
        builder.store(eight, ip)
        builder.store(eight, jq)
        state.append((S, out, x, xv, va, vb, ip, jq))
    # 2 size / w output blocks: all but the last come out of the loop
    shift_w = {8: 2, 4: 1}[w]
    steps = builder.sub(builder.lshr(size, ir.Constant(_I64, shift_w)), ir.Constant(_I64, 1))
    with cgutils.for_range(builder, steps) as loop:
        for S, out, x, xv, va, vb, ip, jq in state:
            lo, hi = _merge2w(builder, builder.load(va), builder.load(vb), w)
            store8(builder.gep(out, [builder.mul(loop.index, eight)]), lo)
            i = builder.load(ip)
            j = builder.load(jq)
            pi = builder.gep(S, [i])
            qj = builder.gep(S, [j])
            take_p = builder.icmp_signed("<=", builder.load(pi),
                                         builder.add(builder.load(qj), x))
            # the next block: S's at i as it is, or S's at j shifted by x
            shift = builder.select(take_p, ir.Constant(V, [0] * w), xv)
            nxt = builder.add(load8(builder.select(take_p, pi, qj)), shift)
            builder.store(nxt, va)
            builder.store(builder.add(i, builder.select(take_p, eight, zero)), ip)
            builder.store(builder.add(j, builder.select(take_p, zero, eight)), jq)
            builder.store(hi, vb)
    for _S, out, _x, _xv, _va, vb, _ip, _jq in state:
        store8(builder.gep(out, [builder.mul(steps, eight)]), builder.load(vb))


@intrinsic
def simd_merge(typingctx, buf, src, dst, x, size):
    """buf[dst:dst + 2 size] = sorted union of S = buf[src:src + size] and S + x."""
    sig = types.void(buf, src, dst, x, size)

    def codegen(context, builder, signature, args):
        bufv, srcv, dstv, xv, sizev = args
        data = context.make_array(signature.args[0])(context, builder, bufv).data
        _emit_merges(builder, [(builder.gep(data, [srcv]), builder.gep(data, [dstv]), xv)], sizev)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def simd_merge2(typingctx, buf, src_a, dst_a, x_a, src_b, dst_b, x_b, size):
    """Two independent :func:`simd_merge` calls of the same size, interleaved in one loop."""
    sig = types.void(buf, src_a, dst_a, x_a, src_b, dst_b, x_b, size)

    def codegen(context, builder, signature, args):
        bufv, sa, da, xa, sb, db, xb, sizev = args
        data = context.make_array(signature.args[0])(context, builder, bufv).data
        _emit_merges(
            builder,
            [
                (builder.gep(data, [sa]), builder.gep(data, [da]), xa),
                (builder.gep(data, [sb]), builder.gep(data, [db]), xb),
            ],
            sizev,
        )
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def simd_merge4(typingctx, buf, src, dst, x, size):
    """:func:`simd_merge` four lanes at a time (``size`` a multiple of 4, at least 4)."""
    sig = types.void(buf, src, dst, x, size)

    def codegen(context, builder, signature, args):
        bufv, srcv, dstv, xv, sizev = args
        data = context.make_array(signature.args[0])(context, builder, bufv).data
        _emit_merges(builder, [(builder.gep(data, [srcv]), builder.gep(data, [dstv]), xv)],
                     sizev, 4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def simd_merge2_4(typingctx, buf, src_a, dst_a, x_a, src_b, dst_b, x_b, size):
    """:func:`simd_merge2` four lanes at a time."""
    sig = types.void(buf, src_a, dst_a, x_a, src_b, dst_b, x_b, size)

    def codegen(context, builder, signature, args):
        bufv, sa, da, xa, sb, db, xb, sizev = args
        data = context.make_array(signature.args[0])(context, builder, bufv).data
        _emit_merges(
            builder,
            [
                (builder.gep(data, [sa]), builder.gep(data, [da]), xa),
                (builder.gep(data, [sb]), builder.gep(data, [db]), xb),
            ],
            sizev, 4,
        )
        return context.get_dummy_value()

    return sig, codegen
