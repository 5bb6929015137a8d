"""qconv vs onnxruntime's QLinearConv / ConvInteger (single-node models) and a numpy int64 oracle.

onnxruntime's AVX2 u8 x s8 GEMM sums adjacent products with vpmaddubsw, which saturates at int16
when the weights were not quantized with reduce_range (255·127·2 > 32767). edgert accumulates
exactly, so u8 x i8 cases are compared with onnxruntime only on activations <= 127 (which cannot
saturate), and with the numpy int64 oracle on full-range data. Combinations onnxruntime has no
kernel for (i8 x u8, y typed unlike x, distinct per-channel w_zp) use the numpy oracle only.
"""
import zlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from oplib import run_op

ONNX_T = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8,
          np.dtype(np.int32): TensorProto.INT32, np.dtype(np.float32): TensorProto.FLOAT}


def trange(dt):
    i = np.iinfo(dt)
    return int(i.min), int(i.max)


def conv_acc_ref(x, w, w_zp, bias, x_zp, strides, pads, dil, group):
    """Exact sum (x - x_zp)(w - w_zp) + bias in int64; x NHWC, w [M,KH,KW,C/group]."""
    n, h, wd, c = x.shape
    m, kh, kw, cg = w.shape
    sh, sw = strides
    dh, dw = dil
    pt, pl, pb, pr = pads
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x.astype(np.int64) - x_zp, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    wz = w.astype(np.int64) - w_zp.astype(np.int64)[:, None, None, None]
    mg = m // group
    acc = np.zeros((n, oh, ow, m), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            for g in range(group):
                acc[..., g * mg:(g + 1) * mg] += (patch[..., g * cg:(g + 1) * cg]
                                                  @ wz[g * mg:(g + 1) * mg, i, j, :].T)
    return acc + bias.astype(np.int64)


def requant_ref(acc, scale, y_zp, qmin, qmax, yt):
    assert np.abs(acc).max() < 2**31
    v = acc.astype(np.float32) * scale
    if yt == np.float32:
        return v
    v = np.clip(v, np.float32(qmin - y_zp), np.float32(qmax - y_zp))
    return (np.rint(v).astype(np.int64) + y_zp).astype(yt)


def make_case(seed, *, n=1, h=7, w=6, c=5, m=7, k=(3, 3), s=(1, 1), pads=(0, 0, 0, 0),
              d=(1, 1), group=1, xt=np.uint8, wt=np.int8, yt=None, per_channel=False,
              x_zp=None, w_zp=None, y_zp=None, relu=False, distinct_wzp=False, x_hi=None, center=False,
              sym_w=False):
    rng = np.random.default_rng(seed)
    yt = xt if yt is None else yt
    xlo, xhi = trange(xt)
    if x_hi is not None:
        xhi = x_hi
    wlo, whi = trange(wt)
    x = rng.integers(xlo, xhi + 1, (n, h, w, c)).astype(xt)
    if sym_w:  # as onnxruntime quantizes weights: w - w_zp in [-127, 127]
        wlo += 1
    wq = rng.integers(wlo, whi + 1, (m, k[0], k[1], c // group)).astype(wt)
    x_zp = int(rng.integers(xlo, xhi + 1)) if x_zp is None else x_zp
    if sym_w and w_zp is None:
        w_zp = 0 if wt == np.int8 else 128
    if distinct_wzp:
        wzp = rng.integers(wlo, whi + 1, m)
    else:
        wzp = np.full(m, int(rng.integers(wlo, whi + 1)) if w_zp is None else w_zp)
    wzp = wzp.astype(np.int32)
    x_scale = np.float32(rng.uniform(0.005, 0.05))
    w_scale = (rng.uniform(0.001, 0.02, m) if per_channel else
               np.full(m, rng.uniform(0.001, 0.02))).astype(np.float32)
    kk = k[0] * k[1] * (c // group)
    bias = rng.integers(-200 * kk, 200 * kk, m).astype(np.int32)
    if center:  # bias cancels each channel's mean so about half the outputs are negative
        acc0 = conv_acc_ref(x, wq, wzp, np.zeros(m, np.int32), x_zp, s, pads, d, group)
        bias = (-acc0.mean(axis=(0, 1, 2))).round().astype(np.int32)
    acc = conv_acc_ref(x, wq, wzp, bias, x_zp, s, pads, d, group)
    real_std = float(np.std(acc)) * float(x_scale) * float(w_scale.mean()) + 1e-6
    y_scale = np.float32(real_std / 50)  # spreads outputs over the range, some saturate
    ylo, yhi = trange(yt) if yt != np.float32 else (0, 0)
    if y_zp is None:
        y_zp = int(rng.integers(ylo, yhi + 1)) if yt != np.float32 else 0
    qmin, qmax = (max(ylo, y_zp), yhi) if relu else (ylo, yhi)
    if yt == np.float32:
        scale = x_scale * w_scale
    else:
        scale = x_scale * w_scale / y_scale  # float32 ops, as onnxruntime computes them
    folded = (bias.astype(np.int64) - x_zp * (wq.astype(np.int64) - wzp[:, None, None, None])
              .reshape(m, -1).sum(1))
    attrs = {"weight": np.ascontiguousarray(wq), "w_zp": wzp, "bias": folded.astype(np.int32),
             "scale": scale.astype(np.float32), "x_zp": x_zp, "kernel": list(k),
             "strides": list(s), "pads": list(pads), "dilations": list(d), "group": group}
    if yt != np.float32:
        attrs.update(y_zp=y_zp, qmin=qmin, qmax=qmax)
    expect = requant_ref(acc, attrs["scale"], y_zp, qmin, qmax, yt)
    return dict(x=x, wq=wq, wzp=wzp, bias=bias, x_zp=x_zp, x_scale=x_scale, w_scale=w_scale,
                y_scale=y_scale, y_zp=y_zp, qmin=qmin, qmax=qmax, yt=yt, attrs=attrs,
                acc=acc, expect=expect, per_channel=per_channel, k=k, s=s, pads=pads, d=d,
                group=group)


def run_edgert(cs, threads=1):
    return run_op("qconv", [cs["x"]], [(cs["expect"].shape, cs["yt"])], cs["attrs"],
                  threads=threads)[0]


def _session(nodes, inputs, outputs, inits, domain_ms=False):
    opsets = [helper.make_opsetid("", 13)]
    if domain_ms:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                              opset_imports=opsets)
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def ort_qlinearconv(cs):
    """onnxruntime QLinearConv on the NCHW transpose; Relu narrowing applied as a clip."""
    x, wq, yt = cs["x"], cs["wq"], cs["yt"]
    xt, wt = x.dtype, wq.dtype
    m = wq.shape[0]
    pc = cs["per_channel"]
    T = lambda a: onnx.numpy_helper.from_array(a[0], a[1])  # noqa: E731
    inits = [T((np.array(cs["x_scale"], np.float32), "xs")),
             T((np.array(cs["x_zp"], xt), "xz")),
             T((np.ascontiguousarray(wq.transpose(0, 3, 1, 2)), "w")),
             T((cs["w_scale"] if pc else np.array(cs["w_scale"][0], np.float32), "ws")),
             T((cs["wzp"].astype(wt) if pc else np.array(cs["wzp"][0], wt), "wz")),
             T((np.array(cs["y_scale"], np.float32), "ys")),
             T((np.array(cs["y_zp"], yt), "yz")),
             T((cs["bias"], "b"))]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], kernel_shape=list(cs["k"]), strides=list(cs["s"]),
                            pads=list(cs["pads"]), dilations=list(cs["d"]), group=cs["group"])
    sess = _session([node], [helper.make_tensor_value_info("x", ONNX_T[xt], None)],
                    [helper.make_tensor_value_info("y", ONNX_T[np.dtype(yt)], None)], inits)
    y = sess.run(None, {"x": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]
    assert y.shape[1] == m
    return np.clip(y.transpose(0, 2, 3, 1), cs["qmin"], cs["qmax"]).astype(yt)


def ort_convinteger_acc(cs):
    """onnxruntime ConvInteger (+ bias) as the oracle for the f32-output accumulator."""
    x, wq = cs["x"], cs["wq"]
    inits = [onnx.numpy_helper.from_array(np.ascontiguousarray(wq.transpose(0, 3, 1, 2)), "w"),
             onnx.numpy_helper.from_array(np.array(cs["x_zp"], x.dtype), "xz"),
             onnx.numpy_helper.from_array(np.array(cs["wzp"][0], wq.dtype), "wz")]
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"],
                            kernel_shape=list(cs["k"]), strides=list(cs["s"]),
                            pads=list(cs["pads"]), dilations=list(cs["d"]), group=cs["group"])
    sess = _session([node], [helper.make_tensor_value_info("x", ONNX_T[x.dtype], None)],
                    [helper.make_tensor_value_info("y", TensorProto.INT32, None)], inits)
    y = sess.run(None, {"x": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]
    return y.transpose(0, 2, 3, 1).astype(np.int64) + cs["bias"]


U8, I8, F32 = np.uint8, np.int8, np.float32
COMBOS = {"u8u8": (U8, U8), "u8i8": (U8, I8), "i8i8": (I8, I8), "i8u8": (I8, U8)}

CONFIGS = {
    "1x1": dict(h=8, w=8, c=13, m=11, k=(1, 1)),
    "1x1_s2": dict(h=9, w=8, c=13, m=11, k=(1, 1), s=(2, 2)),
    "3x3_pad1": dict(h=7, w=9, c=5, m=7, k=(3, 3), pads=(1, 1, 1, 1)),
    "3x3_s2_asym_pad": dict(h=10, w=9, c=7, m=9, k=(3, 3), s=(2, 2), pads=(0, 1, 1, 0)),
    "5x5": dict(h=9, w=8, c=3, m=5, k=(5, 5), pads=(2, 1, 2, 3)),
    "7x1": dict(h=11, w=5, c=9, m=6, k=(7, 1), pads=(3, 0, 3, 0)),
    "1x7_s21": dict(h=6, w=12, c=4, m=5, k=(1, 7), s=(2, 1), pads=(0, 3, 1, 3)),
    "dil2": dict(h=9, w=9, c=5, m=6, k=(3, 3), d=(2, 2), pads=(2, 2, 2, 2)),
    "dil21_s12": dict(h=10, w=11, c=3, m=4, k=(3, 3), d=(2, 1), s=(1, 2), pads=(1, 0, 2, 1)),
    "group2": dict(h=7, w=7, c=6, m=10, k=(3, 3), pads=(1, 1, 1, 1), group=2),
    "group3_s2": dict(h=8, w=7, c=9, m=6, k=(3, 3), s=(2, 2), pads=(1, 1, 0, 0), group=3),
    "depthwise": dict(h=8, w=9, c=17, m=17, k=(3, 3), pads=(1, 1, 1, 1), group=17),
    "depthwise_s2": dict(h=9, w=8, c=19, m=19, k=(3, 3), s=(2, 2), pads=(0, 0, 1, 1), group=19),
    "depthwise_5x5_dil2": dict(h=9, w=10, c=9, m=9, k=(5, 5), d=(2, 2), pads=(4, 4, 4, 4),
                               group=9),
    "depthwise_wide": dict(h=5, w=4, c=150, m=150, k=(3, 3), pads=(1, 1, 1, 1), group=150),
    "channel_mult2": dict(h=6, w=6, c=4, m=8, k=(3, 3), pads=(1, 1, 1, 1), group=4),
    "large_k_3x3x512": dict(h=5, w=5, c=512, m=24, k=(3, 3), pads=(1, 1, 1, 1)),
    "batch2": dict(n=2, h=7, w=6, c=7, m=9, k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1)),
    "many_tiles_and_cols": dict(h=20, w=20, c=33, m=70, k=(3, 3), pads=(1, 1, 1, 1)),
    "many_pixels_1x1": dict(h=48, w=48, c=8, m=16, k=(1, 1)),
    "kernel_larger_than_input": dict(h=1, w=2, c=3, m=4, k=(3, 3), pads=(1, 1, 1, 0)),
    # RGB stems: im2col copies runs of interior pixels along an output row, tiles start mid-row.
    # Depthwise 3x3 on padded rows: channels not a multiple of 16, pads wider than the kernel.
    "dw_3x3_c20_pad3": dict(h=5, w=4, c=20, m=20, k=(3, 3), pads=(3, 3, 3, 3), group=20),
    "dw_3x3_c24_s2_pads": dict(h=6, w=5, c=24, m=24, k=(3, 3), s=(2, 2), pads=(0, 3, 2, 0),
                               group=24),
    "dw_3x3_c5_s2_all_pad": dict(h=3, w=1, c=5, m=5, k=(3, 3), s=(2, 2), pads=(1, 3, 1, 0),
                                 group=5),  # its output column reads padding columns only
    "dw_3x3_c64_w1_n2": dict(n=2, h=7, w=1, c=64, m=64, k=(3, 3), pads=(1, 1, 1, 1), group=64),
    # Grouped 1x1: sign_s8 rows prepared once per tile for all groups (staged when not whole quads).
    # tall narrow images: the row kernel walks the columns of a transposed copy
    "dw_columns_25x5_c64": dict(h=25, w=5, c=64, m=64, k=(3, 3), pads=(1, 1, 1, 1), group=64),
    "dw_columns_s2_asym_n2": dict(n=2, h=21, w=6, c=32, m=32, k=(3, 3), s=(2, 2),
                                  pads=(0, 1, 2, 0), group=32),
    "dw_columns_pad3": dict(h=9, w=2, c=16, m=16, k=(3, 3), pads=(3, 3, 3, 3), group=16),
    "group3_1x1_c24_tiles": dict(n=2, h=20, w=18, c=24, m=30, k=(1, 1), group=3),
    "group4_1x1_c64": dict(h=9, w=7, c=64, m=20, k=(1, 1), group=4),
    "group3_1x1_c30_staged": dict(n=2, h=5, w=7, c=30, m=12, k=(1, 1), group=3),  # 10 a group
    "group5_1x1_c15_staged": dict(h=4, w=6, c=15, m=10, k=(1, 1), group=5),  # 3 a group
    "stem_rgb_3x3_s2_tiles": dict(h=70, w=66, c=3, m=16, k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1)),
    # DS-CNN's stem: one channel, 4-byte tap rows, asymmetric padding (the input padded once)
    "stem_c1_10x4_s2": dict(h=49, w=10, c=1, m=20, k=(10, 4), s=(2, 2), pads=(4, 1, 5, 1)),
    # too large to pad once (> 64 KiB): border pixels through the per-tap path
    "stem_rgb_3x3_s2_unpadded": dict(h=150, w=151, c=3, m=8, k=(3, 3), s=(2, 2),
                                     pads=(1, 0, 1, 1)),
    "stem_rgb_7x7_s2_batch2": dict(n=2, h=41, w=37, c=3, m=8, k=(7, 7), s=(2, 2),
                                   pads=(3, 3, 3, 3)),
    # rows gathered in K order (tap rows <= 16 bytes, 16 < k <= 32): no padding at all (the last
    # pixels' 16-byte reads would pass the input's end: those rows by im2col), dilated rows
    "stem_rgb_3x3_nopad_n2": dict(n=2, h=9, w=20, c=3, m=8, k=(3, 3)),
    "stem_c2_3x3_dil_rows": dict(h=12, w=11, c=2, m=5, k=(3, 3), d=(2, 1), pads=(1, 1, 2, 0)),
    # Whole channel quads, 16+ a group, weights in the byte form (w - w_zp a signed byte, as
    # onnxruntime quantizes them; a random w_zp would send them to the int16 form): kernels with
    # an indirect form read taps by pointer, from fixed offsets for windows inside the image and
    # tap by tap at the borders.
    "taps_3x3_c32_s2_dil": dict(h=11, w=10, c=32, m=20, k=(3, 3), s=(2, 2), d=(1, 2),
                                pads=(1, 2, 0, 1), sym_w=True),
    "taps_group2_c64": dict(h=8, w=7, c=64, m=24, k=(3, 3), pads=(1, 1, 1, 1), group=2,
                            sym_w=True),
    "taps_5x5_c16": dict(h=9, w=9, c=16, m=17, k=(5, 5), pads=(2, 2, 2, 2), sym_w=True),
    "taps_batch2_c20": dict(n=2, h=6, w=7, c=20, m=9, k=(3, 3), s=(1, 2), pads=(1, 0, 1, 1),
                            sym_w=True),
    # Large enough for the amx kernel: 32-row groups, the last one partial.
    "taps_3x3_c64_13x13": dict(h=13, w=13, c=64, m=48, k=(3, 3), pads=(1, 1, 1, 1), sym_w=True),
    # amx, channels not in whole quads: one table entry per kernel row of a padded input copy
    # (an RGB stem; a dilated conv over 6 channels), or of the input itself (no padding).
    "rows_rgb_7x7_s2_n2": dict(n=2, h=40, w=38, c=3, m=32, k=(7, 7), s=(2, 2), pads=(3, 3, 3, 2),
                               sym_w=True),
    "rows_c6_3x3_dil21_s12": dict(h=26, w=30, c=6, m=64, k=(3, 3), d=(2, 1), s=(1, 2),
                                  pads=(2, 1, 2, 1), sym_w=True),
    "rows_rgb_5x5_nopad": dict(h=36, w=35, c=3, m=40, k=(5, 5), sym_w=True),
    # Depthwise 3x3 on symmetric weights, u8/i8 outputs: the byte-form row kernel where the ISA
    # has one (avx512vnni/amx) on whole 64-channel blocks, the int16 one on a last 16, 32 or 48;
    # padded rows (200 channels), the column walk (25x5), both strides.
    "dw_sym_3x3_c80_s1": dict(h=6, w=11, c=80, m=80, k=(3, 3), pads=(1, 1, 1, 1), group=80,
                              sym_w=True),
    "dw_sym_3x3_c96_s2": dict(n=2, h=9, w=12, c=96, m=96, k=(3, 3), s=(2, 2),
                              pads=(0, 0, 1, 1), group=96, sym_w=True),
    "dw_sym_3x3_c176_s1": dict(h=5, w=40, c=176, m=176, k=(3, 3), pads=(1, 1, 1, 1), group=176,
                               sym_w=True),
    "dw_sym_3x3_c200_s2": dict(h=7, w=9, c=200, m=200, k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1),
                               group=200, sym_w=True),
    "dw_sym_columns_25x5_c128": dict(h=25, w=5, c=128, m=128, k=(3, 3), pads=(1, 1, 1, 1),
                                     group=128, sym_w=True),
    # 17-32 channels: two output pixels a vector (odd and even widths, both strides)
    "dw_sym_3x3_c32_s1": dict(n=2, h=6, w=13, c=32, m=32, k=(3, 3), pads=(1, 1, 1, 1), group=32,
                              sym_w=True),
    "dw_sym_3x3_c32_s2": dict(h=9, w=14, c=32, m=32, k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1),
                              group=32, sym_w=True),
    "dw_sym_3x3_c20_s1": dict(h=5, w=10, c=20, m=20, k=(3, 3), pads=(1, 1, 1, 1), group=20,
                              sym_w=True),
    "dw_sym_columns_21x4_c32": dict(h=21, w=4, c=32, m=32, k=(3, 3), pads=(1, 1, 1, 1),
                                    group=32, sym_w=True),
    # up to 16 channels: four output pixels a vector (runs of every length mod 4)
    "dw_sym_3x3_c16_s1": dict(n=2, h=5, w=14, c=16, m=16, k=(3, 3), pads=(1, 1, 1, 1), group=16,
                              sym_w=True),
    "dw_sym_3x3_c16_s2": dict(h=9, w=17, c=16, m=16, k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1),
                              group=16, sym_w=True),
    "dw_sym_3x3_c16_w7": dict(h=4, w=7, c=16, m=16, k=(3, 3), group=16, sym_w=True),
    "dw_sym_3x3_c12_s1": dict(h=6, w=9, c=12, m=12, k=(3, 3), pads=(1, 1, 1, 1), group=12,
                              sym_w=True),
    "dw_sym_columns_20x4_c16": dict(h=20, w=4, c=16, m=16, k=(3, 3), pads=(1, 1, 1, 1),
                                    group=16, sym_w=True),  # outputs 64 bytes apart
    # the byte-form per-pixel kernel (avx512vnni): 64-channel blocks and a tail, 25 and 49 taps
    # (groups of 4 and a partial one), strides 1 and 2
    "dw_sym_5x5_c100_s1": dict(h=9, w=10, c=100, m=100, k=(5, 5), pads=(2, 2, 2, 2), group=100,
                               sym_w=True),
    "dw_sym_5x5_c136_s2": dict(n=2, h=11, w=9, c=136, m=136, k=(5, 5), s=(2, 2),
                               pads=(2, 2, 2, 2), group=136, sym_w=True),
    "dw_sym_7x7_c64": dict(h=8, w=8, c=64, m=64, k=(7, 7), pads=(3, 3, 3, 3), group=64,
                           sym_w=True),
    # padding that would make the copy several times the input: the engine keeps im2col tiles
    # (which path ran is not visible from here; this checks the result on amx with huge pads)
    "rows_rgb_7x7_s8_pad100": dict(h=128, w=120, c=3, m=16, k=(7, 7), s=(8, 8),
                                   pads=(100, 90, 100, 95), sym_w=True),
}


def ort_applies(cs):
    xt, wt = cs["x"].dtype, cs["wq"].dtype
    if np.dtype(cs["yt"]) != xt or (xt == np.int8 and wt == np.uint8):
        return False  # no onnxruntime kernel for these type combinations
    return len(set(cs["wzp"].tolist())) == 1  # onnxruntime wants one w_zp across channels


@pytest.mark.parametrize("combo", list(COMBOS))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_qconv_matches_onnxruntime_and_numpy(name, combo):
    xt, wt = COMBOS[combo]
    seed = zlib.crc32(f"{name}-{combo}".encode())
    for per_channel in (False, True):
        # u8 x i8: data kept below onnxruntime's int16 saturation for the onnxruntime check ...
        x_hi = 127 if (xt, wt) == (U8, I8) else None
        cs = make_case(seed, xt=xt, wt=wt, per_channel=per_channel, x_hi=x_hi, **CONFIGS[name])
        y = run_edgert(cs)
        np.testing.assert_array_equal(y, cs["expect"])
        if ort_applies(cs):
            np.testing.assert_array_equal(y, ort_qlinearconv(cs))
        if x_hi is not None:  # ... and full range against the exact numpy oracle only
            cs = make_case(seed + 1, xt=xt, wt=wt, per_channel=per_channel, **CONFIGS[name])
            np.testing.assert_array_equal(run_edgert(cs), cs["expect"])


@pytest.mark.parametrize("combo", list(COMBOS))
@pytest.mark.parametrize("zp_end", ["min", "max"])
def test_qconv_extreme_zero_points(combo, zp_end):
    xt, wt = COMBOS[combo]
    pick = lambda t: trange(t)[0 if zp_end == "min" else 1]  # noqa: E731
    for name in ("3x3_s2_asym_pad", "depthwise", "group2"):
        cs = make_case(7, xt=xt, wt=wt, x_zp=pick(xt), w_zp=pick(wt), y_zp=pick(xt),
                       x_hi=127 if (xt, wt) == (U8, I8) else None, **CONFIGS[name])
        y = run_edgert(cs)
        np.testing.assert_array_equal(y, cs["expect"])
        if ort_applies(cs):
            np.testing.assert_array_equal(y, ort_qlinearconv(cs))
        # w - w_zp reaches ±255 here: the worst case for the int16 packing
        cs = make_case(8, xt=xt, wt=wt, x_zp=pick(xt), w_zp=trange(wt)[1 if zp_end == "min" else 0],
                       y_zp=pick(xt), **CONFIGS[name])
        np.testing.assert_array_equal(run_edgert(cs), cs["expect"])


@pytest.mark.parametrize("combo", ["u8u8", "i8i8"])
@pytest.mark.parametrize("name", ["3x3_pad1", "depthwise", "1x1"])
def test_qconv_relu_narrowed_clamp(name, combo):
    xt, wt = COMBOS[combo]
    mid = sum(trange(xt)) // 2
    cs = make_case(11, xt=xt, wt=wt, relu=True, per_channel=True, y_zp=mid, center=True, **CONFIGS[name])
    y = run_edgert(cs)
    assert cs["qmin"] == mid
    assert (y >= cs["qmin"]).all() and (y == cs["qmin"]).any()
    np.testing.assert_array_equal(y, cs["expect"])
    np.testing.assert_array_equal(y, ort_qlinearconv(cs))


@pytest.mark.parametrize("combo", ["u8u8", "i8i8", "u8i8", "i8u8"])
@pytest.mark.parametrize("name", ["3x3_s2_asym_pad", "depthwise_s2", "group2", "1x1"])
def test_qconv_f32_output(name, combo):
    xt, wt = COMBOS[combo]
    cs = make_case(13, xt=xt, wt=wt, yt=F32, per_channel=True,
                   x_hi=127 if combo == "u8i8" else None, **CONFIGS[name])
    y = run_edgert(cs)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, cs["expect"])
    if combo in ("u8u8", "u8i8"):  # ConvInteger exists for u8 activations only
        acc = ort_convinteger_acc(cs)
        np.testing.assert_array_equal(acc, cs["acc"])
        np.testing.assert_array_equal(y, acc.astype(np.float32) * cs["attrs"]["scale"])


@pytest.mark.parametrize("yt", [U8, I8])
@pytest.mark.parametrize("name", ["3x3_pad1", "depthwise", "group3_s2"])
def test_qconv_distinct_channel_zero_points_and_mixed_output_type(name, yt):
    # onnxruntime takes neither (one w_zp for all channels; y typed as x): numpy oracle only.
    for xt, wt in COMBOS.values():
        cs = make_case(17, xt=xt, wt=wt, yt=yt, distinct_wzp=True, per_channel=True,
                       **CONFIGS[name])
        assert len(set(cs["wzp"].tolist())) > 1
        np.testing.assert_array_equal(run_edgert(cs), cs["expect"])


@pytest.mark.parametrize("name", ["many_tiles_and_cols", "many_pixels_1x1", "depthwise_wide",
                                  "large_k_3x3x512", "group2", "taps_3x3_c64_13x13",
                                  "rows_rgb_7x7_s2_n2"])
def test_qconv_threads_identical(name):
    cs = make_case(19, per_channel=True, **CONFIGS[name])
    y1 = run_edgert(cs, threads=1)
    y2 = run_edgert(cs, threads=2)
    np.testing.assert_array_equal(y1, cs["expect"])
    np.testing.assert_array_equal(y2, y1)


# Padded-row depthwise convs wide enough that 2 threads split them a row a chunk: each thread
# keeps its ring of input rows from chunk to chunk (and must not keep it into another call).
# 712 channels: rows padded to 720; 2 images: a thread's rows cross from one into the other.
DW_CHUNKED = {
    "s1_c712_n2": dict(n=2, h=14, w=14, c=712, m=712, k=(3, 3), pads=(1, 1, 1, 1), group=712),
    "s2_c720": dict(h=27, w=28, c=720, m=720, k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1), group=720),
    # 5x5 rows (a ring of 5; the byte form where the ISA has it: w' in int8)
    "5x5_s1_c264_n2": dict(n=2, h=14, w=14, c=264, m=264, k=(5, 5), pads=(2, 2, 2, 2),
                           group=264, sym_w=True),
    "5x5_s2_c256": dict(h=27, w=28, c=256, m=256, k=(5, 5), s=(2, 2), pads=(2, 2, 2, 2),
                        group=256, sym_w=True),
}


@pytest.mark.parametrize("name", sorted(DW_CHUNKED))
def test_depthwise_rows_split_a_row_a_chunk(name):
    from oplib import make_executor
    cs = make_case(23, per_channel=True, **DW_CHUNKED[name])
    ex = make_executor("qconv", [cs["x"]], [(cs["expect"].shape, cs["yt"])], cs["attrs"],
                       threads=2)
    other = make_case(24, per_channel=True, **DW_CHUNKED[name])
    rng = np.random.default_rng(25)
    xs = [cs["x"]] + [rng.integers(0, 256, cs["x"].shape).astype(np.uint8) for _ in range(2)]
    for x in xs + xs[::-1]:  # other inputs, and another op's call in between
        acc = conv_acc_ref(x, cs["wq"], cs["wzp"], cs["bias"], cs["x_zp"], cs["s"], cs["pads"],
                           cs["d"], cs["group"])
        want = requant_ref(acc, cs["attrs"]["scale"], cs["y_zp"], cs["qmin"], cs["qmax"],
                           cs["yt"])
        np.testing.assert_array_equal(ex.run([x])[0], want)
        np.testing.assert_array_equal(run_edgert(other, threads=2), other["expect"])


def _bad(cs, out_shape=None, **changes):
    attrs = dict(cs["attrs"], **changes)
    for k, v in changes.items():
        if v is None:
            del attrs[k]
    shape = cs["expect"].shape if out_shape is None else out_shape
    from edgert import _core
    with pytest.raises(_core.ModelError):
        run_op("qconv", [cs["x"]], [(shape, cs["yt"])], attrs)


def test_qconv_rejects_bad_specs():
    cs = make_case(23, **CONFIGS["group2"])  # x [1,7,7,6], w [10,3,3,3], group 2, pad 1
    a = cs["attrs"]
    _bad(cs, weight=np.zeros((10, 3, 3, 6), np.int8))          # C/group mismatch
    _bad(cs, weight=np.zeros((10, 3, 3, 3), np.int32))         # weight dtype
    _bad(cs, weight=np.zeros((10, 9, 3), np.int8))             # weight rank
    _bad(cs, kernel=[3, 1])
    _bad(cs, strides=[0, 1])
    _bad(cs, dilations=[1, 0])
    _bad(cs, pads=[-1, 1, 1, 1])
    _bad(cs, pads=[1, 1, 1])
    _bad(cs, group=4)                                          # does not divide C=6
    _bad(cs, group=0)
    _bad(cs, out_shape=(1, 7, 7, 9))                           # M
    _bad(cs, out_shape=(1, 6, 7, 10))                          # OH off by one
    _bad(cs, w_zp=a["w_zp"][:9])
    _bad(cs, w_zp=np.full(10, 128, np.int32))                  # outside i8 weights
    _bad(cs, bias=a["bias"][:9])
    _bad(cs, bias=a["bias"].astype(np.int64))
    _bad(cs, scale=np.full(10, np.nan, np.float32))
    _bad(cs, scale=np.full(10, np.inf, np.float32))
    _bad(cs, x_zp=256)
    _bad(cs, x_zp=None)
    _bad(cs, y_zp=-1)
    _bad(cs, qmin=200, qmax=100)
    _bad(cs, qmax=256)
    big = make_case(1, h=1, w=1, c=4, m=2, k=(1, 1))
    _bad(big, pads=[0, 0, 0, 0], kernel=[3, 3], weight=np.zeros((2, 3, 3, 4), np.int8))  # span
    x = np.zeros((1, 1, 1, 32769), np.uint8)
    from edgert import _core
    with pytest.raises(_core.ModelError, match="32768"):
        run_op("qconv", [x], [((1, 1, 1, 1), np.uint8)],
               dict(big["attrs"], weight=np.zeros((1, 1, 1, 32769), np.int8),
                    w_zp=np.zeros(1, np.int32), bias=np.zeros(1, np.int32),
                    scale=np.ones(1, np.float32), kernel=[1, 1]))


# ---- every ISA this machine runs, bit for bit ------------------------------------------------
# The ISA is fixed per process (EDGERT_ISA), so other ISAs run the same ops in a subprocess.
# Weights are shaped to reach each exact form the engine picks at pack time (q8-gemm-x8.h):
# "full" s8 in [-127, 127] with w_zp 0 (sign_s8), "rr" 7-bit (pair_u8), "m128" containing -128
# or a nonzero w_zp (int16).
_ISA_SCRIPT = r"""
import pickle, sys
sys.path.insert(0, sys.argv[3])
from oplib import run_op
from edgert import _core
cases = pickle.load(open(sys.argv[1], "rb"))
outs = [run_op(*c) for c in cases]
pickle.dump((_core.isa(), outs), open(sys.argv[2], "wb"))
"""


def run_under_isa(isa, cases):
    """cases: [(op_type, inputs, outputs, attrs, threads)] run with EDGERT_ISA=isa; "isa:tile"
    also sets EDGERT_VNNI_TILE (the avx512vnni GEMM's tiles)."""
    import os
    import pickle
    import subprocess
    import sys
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as td:
        src, dst = Path(td) / "in.pkl", Path(td) / "out.pkl"
        src.write_bytes(pickle.dumps(cases))
        name, _, tile = isa.partition(":")
        env = dict(os.environ, EDGERT_ISA=name)
        if tile:
            env["EDGERT_VNNI_TILE"] = tile
        subprocess.run([sys.executable, "-c", _ISA_SCRIPT, str(src), str(dst),
                        str(Path(__file__).parent)], env=env, check=True)
        got_isa, outs = pickle.loads(dst.read_bytes())
    assert got_isa == name
    return outs


def vnni_tile():
    """The tiles of the avx512vnni GEMM in this process (ISA avx512vnni): 8x16 or 8x32."""
    from edgert import _core
    return "8x32" if "_8x32c4_" in _core.x8_kernel(64, 64, 64) else "8x16"


def other_isas():
    """The other ISAs this machine runs, avx512vnni with each of its GEMM tiles."""
    from edgert import _core
    here = _core.isa() + (":" + vnni_tile() if _core.isa() == "avx512vnni" else "")
    configs = []
    for i in _core.available_isas():
        configs += [i + ":8x16", i + ":8x32"] if i == "avx512vnni" else [i]
    return [c for c in configs if c != here]


def shape_weights(cs, form, rng):
    """Rewrites cs's weights for form and recomputes its bias and expected output."""
    w = cs["attrs"]["weight"]
    lo, hi = trange(w.dtype)
    if form == "full":
        cs["wzp"][:] = 0 if w.dtype == np.int8 else 128
        w[:] = rng.integers(max(lo, int(cs["wzp"][0]) - 127), min(hi, int(cs["wzp"][0]) + 127) + 1,
                            w.shape)
    elif form == "rr":
        cs["wzp"][:] = 0 if w.dtype == np.int8 else 128
        w[:] = rng.integers(int(cs["wzp"][0]) - 63, int(cs["wzp"][0]) + 64, w.shape)
    elif form == "offset":  # w' beyond int8 only through the zero point: W − 128 (u8) or W (i8)
        z0 = 128 if w.dtype == np.uint8 else 0  # passes the pair test, so AVX2 runs pair_u8 too
        w[:] = z0 + rng.integers(-64, 65, w.shape)
        cs["wzp"][:] = z0 - 90 if w.dtype == np.uint8 else 90
        if rng.integers(0, 2):  # at times one zero point a channel (per-row biases)
            cs["wzp"][:] += rng.integers(-5, 6, cs["wzp"].shape).astype(np.int32)
    elif form == "sparse":  # small weights and a few pairs past the pair_u8 limit in any K order
        z = 0 if w.dtype == np.int8 else 128
        cs["wzp"][:] = z
        flat = w.reshape(w.shape[0], -1)
        flat[:] = z + rng.integers(-28, 29, flat.shape)  # 100 + 28 <= 128: passes beside a 100
        kk = flat.shape[1]
        # One such column per 2048 weights (its failing pair within what the engine moves out,
        # 1 per 1024): a same-sign 100 in every even channel and in one odd one, more than half
        # the channels, so that every pairing, within groups of 16 or across them, has two of
        # them side by side; in the model's order only pair (g, g + 1) fails.
        count = min(flat.shape[0], max(1, flat.size // 2048))
        for col in rng.choice(flat.shape[0], count, replace=False):
            if kk >= 16:
                g = int(rng.integers(0, kk // 16)) * 16
                sgn = 1 if rng.integers(0, 2) else -1
                flat[col, 0:kk:2] = z + sgn * 100
                flat[col, g + 1] = z + sgn * int(rng.integers(29, 101))
    elif form == "heavy":  # a few heavy input channels, adjacent in pairs: passes pair_u8 only
        z = 0 if w.dtype == np.int8 else 128  # when each is paired with a light one instead
        cs["wzp"][:] = z
        flat = w.reshape(w.shape[0], -1)
        flat[:] = z + rng.integers(-28, 29, flat.shape)  # 100 + 28 <= 128: a light partner passes
        kk = flat.shape[1]
        for g0 in range(0, kk - 1, 16):  # two heavy pairs (2j, 2j + 1) per group of 16
            pairs = [j for j in range(g0, min(kk, g0 + 16) - 1, 2)]
            for j in rng.choice(pairs, min(2, len(pairs) // 2 or 1), replace=False):
                sgn = rng.choice([-1, 1], flat.shape[0])
                flat[:, j], flat[:, j + 1] = z + sgn * 100, z + sgn * int(rng.integers(90, 101))
    elif form == "crowded":  # 9 heavy channels in the first group of 16: no pairing within
        z = 0 if w.dtype == np.int8 else 128  # it passes, one that moves 9 of its light
        cs["wzp"][:] = z  # channels out for lights of other groups does
        flat = w.reshape(w.shape[0], -1)
        flat[:] = z + rng.integers(-28, 29, flat.shape)
        sgn = rng.choice([-1, 1], flat.shape[0])
        for j in range(9):
            flat[:, j] = z + sgn * int(rng.integers(90, 101))
    m = w.shape[0]
    folded = (cs["bias"].astype(np.int64) - cs["x_zp"] *
              (w.astype(np.int64) - cs["wzp"][:, None, None, None]).reshape(m, -1).sum(1))
    cs["attrs"]["bias"] = folded.astype(np.int32)
    cs["attrs"]["w_zp"] = cs["wzp"]
    acc = conv_acc_ref(cs["x"], w, cs["wzp"], cs["bias"], cs["x_zp"], cs["s"], cs["pads"],
                       cs["d"], cs["group"])
    cs["expect"] = requant_ref(acc, cs["attrs"]["scale"], cs["y_zp"], cs["qmin"], cs["qmax"],
                               cs["yt"])


ISA_CONFIGS = dict(CONFIGS, **{
    "1x1_k3": dict(h=5, w=6, c=3, m=17, k=(1, 1)),           # K < 4 (one partial quad)
    "1x1_k4": dict(h=5, w=6, c=4, m=16, k=(1, 1)),           # K = 4, N = NR
    "1x1_k37_n33": dict(h=7, w=5, c=37, m=33, k=(1, 1)),     # K, N and M remainders
    "stem_3x3_s2_c3": dict(h=15, w=13, c=3, m=32, k=(3, 3), s=(2, 2), pads=(0, 0, 1, 1)),
    "large_k_1x1": dict(h=3, w=3, c=4099, m=20, k=(1, 1)),
    "dw_5x5_s2": dict(h=13, w=12, c=40, m=40, k=(5, 5), s=(2, 2), pads=(2, 2, 2, 2), group=40),
    "dw_3x3_c8": dict(h=9, w=9, c=8, m=8, k=(3, 3), pads=(1, 1, 1, 1), group=8),
    "dw_3x3_c48_s2": dict(h=10, w=10, c=48, m=48, k=(3, 3), s=(2, 2), pads=(0, 0, 1, 1),
                          group=48),
    "group3_1x1": dict(h=6, w=6, c=24, m=30, k=(1, 1), group=3),
    # 3x3 depthwise row kernels (channels a multiple of 16): interior runs and border pixels.
    "dw_3x3_c32_s1_n2": dict(n=2, h=6, w=9, c=32, m=32, k=(3, 3), pads=(1, 1, 1, 1), group=32),
    "dw_3x3_c16_s2_pad1": dict(h=9, w=12, c=16, m=16, k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1),
                               group=16),
    "dw_3x3_c48_w3": dict(h=4, w=3, c=48, m=48, k=(3, 3), group=48),  # one interior pixel
    "dw_3x3_c32_w2": dict(h=3, w=2, c=32, m=32, k=(3, 3), pads=(1, 1, 1, 1), group=32),  # none
    "dw_3x3_c16_s2_w4": dict(h=5, w=4, c=16, m=16, k=(3, 3), s=(2, 2), pads=(0, 2, 0, 0),
                             group=16),
    # avx512vnni's 32-channel blocks: whole ones and a last 16 in the row kernel; a partial last
    # 32 (masked loads and stores) in the per-pixel kernel.
    "dw_3x3_c144_s1": dict(h=4, w=7, c=144, m=144, k=(3, 3), pads=(1, 1, 1, 1), group=144),
    "dw_3x3_c57_s2": dict(h=7, w=7, c=57, m=57, k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1), group=57),
    # Layers large enough for the amx kernel (see AMX_CONFIGS): M, N and K remainders of its
    # 32x32 steps and 64-byte K chunks; indirect rows, direct rows and im2col rows.
    "amx_3x3_c64": dict(h=12, w=11, c=64, m=80, k=(3, 3), pads=(1, 1, 1, 1)),
    "amx_1x1_k100": dict(h=20, w=17, c=100, m=40, k=(1, 1)),
    "amx_3x3_c20_s2": dict(h=33, w=31, c=20, m=48, k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1)),
    "amx_3x3_c21_s2": dict(h=33, w=31, c=21, m=23, k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1)),
})
AMX_CONFIGS = [n for n in ISA_CONFIGS if n.startswith("amx_")]


def test_amx_configs_pick_the_amx_kernel():
    """The amx_ configs above are shaped for the amx kernel: under amx the engine runs them on
    it (so the bit-exact test below covers it), other ISAs on their own byte kernel."""
    from edgert import _core
    for name in AMX_CONFIGS:
        c = ISA_CONFIGS[name]
        s = c.get("s", (1, 1))
        p = c.get("pads", (0, 0, 0, 0))
        oh = (c["h"] + p[0] + p[2] - c["k"][0]) // s[0] + 1
        ow = (c["w"] + p[1] + p[3] - c["k"][1]) // s[1] + 1
        kern = _core.x8_kernel(oh * ow, c["m"], c["k"][0] * c["k"][1] * c["c"])
        if _core.isa() == "amx":
            assert kern.endswith("__amx"), (name, kern)
        else:
            assert kern is None or not kern.endswith("__amx"), (name, kern)
    if _core.isa() == "amx":  # small layers stay on the avx512vnni kernel
        assert _core.x8_kernel(1, 1000, 1280).endswith("__avx512vnni")
        assert _core.x8_kernel(12544, 96, 16).endswith("__avx512vnni")


@pytest.mark.skipif(not other_isas(), reason="this machine runs only one ISA")
def test_qconv_every_isa_bit_exact():
    cases, expects = [], []
    for i, (name, cfg) in enumerate(sorted(ISA_CONFIGS.items())):
        for j, combo in enumerate(COMBOS):
            xt, wt = COMBOS[combo]
            for form in ("full", "rr", "m128", "sparse"):
                seed = zlib.crc32(f"isa-{name}-{combo}-{form}".encode())
                yt = (xt, F32, I8 if xt == U8 else U8)[(i + j) % 3]
                ext = dict(x_zp=trange(xt)[0], y_zp=trange(yt)[1] if yt != F32 else None) \
                    if seed % 4 == 0 else {}
                cs = make_case(seed, xt=xt, wt=wt, yt=yt, relu=seed % 3 == 0, **ext, **cfg)
                if form != "m128":
                    shape_weights(cs, form, np.random.default_rng(seed))
                cases.append(("qconv", [cs["x"]], [(cs["expect"].shape, yt)], cs["attrs"],
                              1 + seed % 2))
                expects.append(cs["expect"])
    here = [run_op(*c)[0] for c in cases]
    for y, e, c in zip(here, expects, cases):
        np.testing.assert_array_equal(y, e, err_msg=str(c[3]["weight"].shape))
    for isa in other_isas():
        for y, o, c in zip(here, run_under_isa(isa, cases), cases):
            np.testing.assert_array_equal(y, o[0], err_msg=f"{isa}: {c[3]['weight'].shape}")


# Layers cut into tiles of unequal rows (tile_span): 49 rows in 24 + 25 (whole groups of the
# kernel's rows first, the partial one last), 1023 in four tiles whose last is 3 rows longer
# than the others' nominal 256, 55 im2col rows in 24 + 31; each large enough that 2 threads
# split it.
TILE_CONFIGS = {
    "tiles_49_1x1": dict(h=7, w=7, c=320, m=640, k=(1, 1)),
    "tiles_1023_1x1": dict(h=31, w=33, c=64, m=96, k=(1, 1)),
    "tiles_55_3x3": dict(h=5, w=11, c=32, m=64, k=(3, 3), pads=(1, 1, 1, 1)),
}


def test_qconv_tiles_of_unequal_rows_every_isa():
    cases, expects = [], []
    for name, cfg in sorted(TILE_CONFIGS.items()):
        for combo in ("u8i8", "i8i8"):
            xt, wt = COMBOS[combo]
            cs = make_case(zlib.crc32(f"tiles-{name}-{combo}".encode()), xt=xt, wt=wt,
                           per_channel=True, **cfg)
            for threads in (1, 2):
                cases.append(("qconv", [cs["x"]], [(cs["expect"].shape, xt)], cs["attrs"],
                              threads))
                expects.append(cs["expect"])
    for y, e in zip([run_op(*c)[0] for c in cases], expects):
        np.testing.assert_array_equal(y, e)
    for isa in other_isas():
        for o, e, c in zip(run_under_isa(isa, cases), expects, cases):
            np.testing.assert_array_equal(o[0], e, err_msg=f"{isa}: {c[3]['weight'].shape}")


# A conv's output table (out_table: a fused activation) on each of the engine's output paths:
# byte kernels on flat rows (columns split into parts, some empty at 2 threads: 9 blocks of 16
# in 8 parts), im2col/indirect rows, the int16 form (u8 weights off their zero point), the
# depthwise row kernel with per-pixel borders, padded depthwise rows (channels not a multiple
# of 16), column walks (tall narrow images), the per-pixel depthwise kernel (5x5), a 1x1 conv
# whose rows are many tiles.
OUT_TABLE_CONFIGS = {
    "1x1_col_parts": dict(h=2, w=3, c=32, m=144, k=(1, 1)),
    "3x3_rows": dict(h=12, w=13, c=8, m=24, k=(3, 3), pads=(1, 1, 1, 1)),
    "3x3_int16": dict(h=6, w=7, c=6, m=10, k=(3, 3), pads=(1, 1, 1, 1), wt=np.uint8),
    "dw_rows": dict(h=5, w=40, c=32, m=32, k=(3, 3), pads=(1, 1, 1, 1), group=32),
    "dw_padded_c40": dict(n=2, h=7, w=7, c=40, m=40, k=(3, 3), pads=(1, 1, 1, 1), group=40),
    "dw_padded_c32": dict(h=7, w=7, c=32, m=32, k=(3, 3), s=(2, 2), pads=(1, 1, 1, 1), group=32),
    "dw_columns": dict(h=25, w=5, c=64, m=64, k=(3, 3), pads=(1, 1, 1, 1), group=64),
    "dw_5x5": dict(h=9, w=9, c=24, m=24, k=(5, 5), pads=(2, 2, 2, 2), group=24),
    "1x1_tiles": dict(h=31, w=33, c=16, m=24, k=(1, 1)),
}


def test_qconv_out_table_every_path_and_isa():
    """y = out_table[requantized y] (byte as index), against numpy's conv and the table, at 1
    and 2 threads, under every ISA this machine runs."""
    cases, expects = [], []
    for name, cfg in sorted(OUT_TABLE_CONFIGS.items()):
        for xt in (U8, I8):
            cfg = dict(cfg)
            wt = cfg.pop("wt", I8)
            seed = zlib.crc32(f"out-table-{name}-{xt.__name__}".encode())
            cs = make_case(seed, xt=xt, wt=wt, per_channel=True, **cfg)
            table = np.random.default_rng(seed).permutation(256).astype(np.uint8)
            attrs = dict(cs["attrs"], out_table=table.view(xt) if seed % 2 else table)
            want = table[cs["expect"].view(np.uint8)].view(xt)
            for threads in (1, 2):
                cases.append(("qconv", [cs["x"]], [(want.shape, xt)], attrs, threads))
                expects.append(want)
    for y, e, c in zip([run_op(*c)[0] for c in cases], expects, cases):
        np.testing.assert_array_equal(y, e, err_msg=str(c[3]["weight"].shape))
    for isa in other_isas():
        for o, e, c in zip(run_under_isa(isa, cases), expects, cases):
            np.testing.assert_array_equal(o[0], e, err_msg=f"{isa}: {c[3]['weight'].shape}")


def test_qconv_out_table_rejected_for_float_output_and_bad_size():
    from edgert import _core
    cs = make_case(3, yt=np.float32, **CONFIGS["1x1"])
    with pytest.raises(_core.ModelError, match="out_table"):
        run_op("qconv", [cs["x"]], [(cs["expect"].shape, np.float32)],
               dict(cs["attrs"], out_table=np.zeros(256, np.uint8)))
    cs = make_case(3, **CONFIGS["1x1"])
    with pytest.raises(_core.ModelError, match="out_table"):
        run_op("qconv", [cs["x"]], [(cs["expect"].shape, cs["yt"])],
               dict(cs["attrs"], out_table=np.zeros(255, np.uint8)))


SPARSE_CONFIGS = {
    "1x1_flat": dict(h=9, w=8, c=96, m=40, k=(1, 1)),
    "1x1_s2": dict(h=9, w=9, c=64, m=33, k=(1, 1), s=(2, 2)),
    "3x3_pad1": dict(h=8, w=7, c=24, m=48, k=(3, 3), pads=(1, 1, 1, 1)),
    "group2_1x1": dict(h=6, w=6, c=64, m=64, k=(1, 1), group=2),
    "many_pixels": dict(h=40, w=40, c=64, m=32, k=(1, 1)),
}


@pytest.mark.parametrize("combo", ["u8i8", "i8i8"])
@pytest.mark.parametrize("name", list(SPARSE_CONFIGS))
def test_qconv_pair_with_moved_weights(name, combo):
    """Full-range layers failing the pair_u8 test on a few pairs run pair_u8 with those weights
    moved into per-row biases: exact, also from their packed form and after unpacking on
    another ISA."""
    from edgert import _core
    xt, wt = COMBOS[combo]
    seed = zlib.crc32(f"sparse-{name}-{combo}".encode())
    cs = make_case(seed, xt=xt, wt=wt, yt=xt, **SPARSE_CONFIGS[name])
    shape_weights(cs, "sparse", np.random.default_rng(seed))

    def form(add):
        if _core.isa() == "avx2":
            assert add["x8_form"] == 0 and len(add["x8_corr"]) > 0
        if _core.isa() in ("avx512vnni", "amx"):  # exact pairs: pair_u8 as it is, nothing moved
            assert add["x8_form"] == 2 and "x8_corr" not in add
    # other ISAs unpack the weights (the moved ones back in) and pack them anew
    _check_packed_everywhere(cs, form)


ROW_ZP_CONFIGS = {
    "1x1_flat": dict(h=9, w=8, c=40, m=36, k=(1, 1)),              # direct rows
    "1x1_k7_s2": dict(h=9, w=9, c=7, m=20, k=(1, 1), s=(2, 2)),     # rows by pointer, k < 16
    "3x3_pad1": dict(h=8, w=7, c=24, m=48, k=(3, 3), pads=(1, 1, 1, 1)),  # im2col rows
    "stem_3x3_s2_c3": dict(h=15, w=13, c=3, m=32, k=(3, 3), s=(2, 2), pads=(0, 0, 1, 1)),
    "amx_3x3_c64": dict(h=12, w=11, c=64, m=80, k=(3, 3), pads=(1, 1, 1, 1)),
    "amx_1x1_k100": dict(h=20, w=17, c=100, m=40, k=(1, 1)),
    "group3_1x1": dict(h=6, w=6, c=24, m=30, k=(1, 1), group=3),
}


@pytest.mark.parametrize("wzp", ["tensor", "channel", "offset"])
@pytest.mark.parametrize("combo", ["u8u8", "i8u8", "u8i8"])
@pytest.mark.parametrize("name", list(ROW_ZP_CONFIGS))
def test_qconv_weight_zero_point_per_row(name, combo, wzp):
    """Weights no byte form takes as they are (uint8 weights with a zero point far from 128, as
    onnxruntime quantizes them; int8 ones with a zero point) run the byte kernels on W − z0 with
    the rest of the zero point applied per row (x8_form 3 under avx512vnni/amx): exact, from the
    packed form too, and after unpacking on another ISA."""
    from edgert import _core
    xt, wt = COMBOS[combo]
    seed = zlib.crc32(f"rowzp-{name}-{combo}-{wzp}".encode())
    lo, hi = (20, 90) if wt == U8 else (-60, 60)  # w − w_zp reaches beyond int8
    w_zp = None if wzp == "channel" else int(np.random.default_rng(seed).integers(lo, hi))
    cs = make_case(seed, xt=xt, wt=wt, yt=xt, w_zp=w_zp, distinct_wzp=wzp == "channel",
                   **ROW_ZP_CONFIGS[name])
    if wzp == "offset":  # weights near z0, the zero point 90 away: pair_u8 once shifted
        shape_weights(cs, "offset", np.random.default_rng(seed))
    if ort_applies(cs):
        np.testing.assert_array_equal(ort_qlinearconv(cs), cs["expect"])

    def form(add):
        if _core.isa() in ("avx512vnni", "amx"):
            assert add["x8_form"] == 3
    _check_packed_everywhere(cs, form)


def _check_packed_everywhere(cs, check_form):
    """cs's qconv at 1 and 2 threads, check_form on its packed attributes, then from them here
    and under every other ISA: each output equal to cs["expect"]."""
    from oplib import make_executor
    outs = [(cs["expect"].shape, cs["yt"])]
    for threads in (1, 2):
        ex = make_executor("qconv", [cs["x"]], outs, cs["attrs"], threads)
        np.testing.assert_array_equal(ex.run([cs["x"]])[0], cs["expect"])
    drop, add = ex.packed_attrs(0)
    check_form(add)
    packed = {**{k: v for k, v in cs["attrs"].items() if k not in drop}, **add}
    np.testing.assert_array_equal(run_op("qconv", [cs["x"]], outs, packed, 2)[0], cs["expect"])
    for isa in other_isas():
        got = run_under_isa(isa, [("qconv", [cs["x"]], outs, packed, 1)])[0][0]
        np.testing.assert_array_equal(got, cs["expect"])


HEAVY_CONFIGS = {
    "1x1_flat": dict(h=9, w=8, c=96, m=40, k=(1, 1)),          # direct rows, whole groups
    "1x1_flat_k27": dict(h=9, w=8, c=27, m=24, k=(1, 1)),      # a partial last group
    "1x1_k12": dict(h=6, w=5, c=12, m=20, k=(1, 1)),           # one partial group
    "1x1_s2": dict(h=9, w=9, c=40, m=33, k=(1, 1), s=(2, 2)),  # direct rows by pointer
    "stem_3x3_s2_c3": dict(h=15, w=13, c=3, m=32, k=(3, 3), s=(2, 2), pads=(0, 0, 1, 1)),
    # too large to pad once: border rows by im2col, each reordered alone
    "stem_3x3_s2_c3_unpadded": dict(h=150, w=151, c=3, m=16, k=(3, 3), s=(2, 2), pads=(1, 0, 1, 1)),
    "3x3_pad1": dict(h=8, w=7, c=24, m=48, k=(3, 3), pads=(1, 1, 1, 1)),  # im2col in place
    "group2_1x1": dict(h=6, w=6, c=64, m=64, k=(1, 1), group=2),
    "many_pixels": dict(h=40, w=40, c=32, m=16, k=(1, 1)),     # several tiles
}


@pytest.mark.parametrize("combo", ["u8i8", "i8i8"])
@pytest.mark.parametrize("name", list(HEAVY_CONFIGS))
def test_qconv_pair_in_another_k_order(name, combo):
    """Layers whose heavy input channels sit side by side fail the pair_u8 test on too many pairs
    to move; on kernels with int16 pair sums they run pair_u8 with K reordered (heavy channels
    paired with light ones): exact, also from their packed form (x8_perm) and after unpacking on
    another ISA."""
    from edgert import _core
    xt, wt = COMBOS[combo]
    seed = zlib.crc32(f"heavy-{name}-{combo}".encode())
    cs = make_case(seed, xt=xt, wt=wt, yt=xt, **HEAVY_CONFIGS[name])
    shape_weights(cs, "heavy", np.random.default_rng(seed))

    def form(add):
        if _core.isa() == "avx2":
            assert add["x8_form"] == 0 and "x8_corr" not in add and len(add["x8_perm"]) % 16 == 0
        if _core.isa() in ("avx512vnni", "amx"):  # exact pairs: the model's K order
            assert add["x8_form"] == 2 and "x8_perm" not in add
    # other ISAs unpack the weights into the model's K order and pack them anew
    _check_packed_everywhere(cs, form)


def test_qconv_rejects_a_bad_k_order():
    """A stored x8_perm that is not a permutation within its groups, or of the wrong length, is
    a ModelError naming it (a hostile file must not read past a row)."""
    from edgert import _core
    from oplib import make_executor
    if _core.isa() != "avx2":
        pytest.skip("only kernels with int16 pair sums take a stored K order as it is")
    seed = zlib.crc32(b"heavy-bad-perm")
    cs = make_case(seed, xt=np.uint8, wt=np.int8, yt=np.uint8, h=5, w=5, c=27, m=24, k=(1, 1))
    shape_weights(cs, "heavy", np.random.default_rng(seed))
    outs = [(cs["expect"].shape, cs["yt"])]
    drop, add = make_executor("qconv", [cs["x"]], outs, cs["attrs"], 1).packed_attrs(0)
    good = {**{k: v for k, v in cs["attrs"].items() if k not in drop}, **add}
    perm = np.asarray(add["x8_perm"], np.uint8)
    bad = {"repeat": perm.copy(), "past_k": perm.copy(), "short": perm[:16].copy(),
           "pad_moved": perm.copy()}
    bad["repeat"][1] = bad["repeat"][0]
    bad["past_k"][16] = 12  # the last group holds 11 channels
    bad["pad_moved"][31] = 0
    for what, p in bad.items():
        with pytest.raises(_core.ModelError, match="x8_perm"):
            make_executor("qconv", [cs["x"]], outs, dict(good, x8_perm=p), 1)


def _pairs_pass(w2d, zp):
    """numpy: every adjacent pair of w' = w - zp within [-128, 128] on each sign, every row."""
    wp = w2d.astype(np.int64) - zp.astype(np.int64)[:, None]
    if wp.shape[1] % 2:
        wp = np.pad(wp, ((0, 0), (0, 1)))
    a, b = wp[:, 0::2], wp[:, 1::2]
    pos = np.maximum(a, 0) + np.maximum(b, 0)
    neg = np.minimum(a, 0) + np.minimum(b, 0)
    return bool((pos <= 128).all() and (neg >= -128).all())


@pytest.mark.parametrize("k", [8, 27, 48, 96])
def test_pair_order_against_numpy(k):
    """_core.pair_order (what lowering folds into conv chains): None for weights that pass the
    pair_u8 test as they are; for heavy channels side by side, an order within groups of 16 that
    passes by the numpy test; None when no pairing can pass (three same-sign 127s in a group of
    three channels)."""
    from edgert import _core
    rng = np.random.default_rng(k)
    m = 20
    light = rng.integers(-28, 29, (m, k)).astype(np.int8)
    zp = np.zeros(m, np.int32)
    assert _pairs_pass(light, zp) and _core.pair_order(light, zp) is None
    heavy = light.copy()
    heavy[:, 2], heavy[:, 3] = 100, 95  # side by side: 195 > 128
    assert not _pairs_pass(heavy, zp)
    mask = _core.pair_order(heavy, zp)
    assert mask is not None and len(mask) == (k + 15) // 16 * 16
    order = np.array([g + int(mask[g + j]) for g in range(0, k, 16) for j in range(min(16, k - g))])
    assert sorted(order) == list(range(k))
    assert _pairs_pass(heavy[:, order], zp)
    u8 = (heavy.astype(np.int32) + 128).astype(np.uint8)  # u8 weights with zero point 128
    assert _core.pair_order(u8, np.full(m, 128, np.int32)).tolist() == mask.tolist()
    hopeless = light[:, :3].copy()
    hopeless[:] = 127
    assert _core.pair_order(np.ascontiguousarray(hopeless), zp) is None
    with pytest.raises(ValueError, match="2-D"):
        _core.pair_order(heavy.reshape(-1), zp)
    with pytest.raises(ValueError, match="zero point"):
        _core.pair_order(heavy, zp[:3])


def test_pair_order_finds_a_matching_a_greedy_pairing_misses():
    """Channels B (heaviest), A, D, C: B passes with A and D, A with B and C, D with B only. The
    heaviest-first pairing takes B-A and leaves D with C (fails); the exact matching B-D, A-C
    passes, checked by the numpy test."""
    from edgert import _core
    w = np.zeros((3, 4), np.int8)  # rows: output columns; channels A=0, B=1, C=2, D=3
    w[0] = [100, 28, 20, 60]
    w[1] = [0, 0, 60, 100]
    w[2, 1] = 110
    zp = np.zeros(3, np.int32)
    assert not _pairs_pass(w, zp)
    mask = _core.pair_order(w, zp)
    assert mask is not None
    order = np.array([int(mask[j]) for j in range(4)])
    assert sorted(order) == list(range(4)) and _pairs_pass(w[:, order], zp)


CROWDED_CONFIGS = {
    "1x1_flat_k40": dict(h=9, w=8, c=40, m=24, k=(1, 1)),      # direct rows, one call a tile
    "1x1_s2_k24": dict(h=9, w=9, c=24, m=33, k=(1, 1), s=(2, 2)),  # direct rows by pointer
    "3x3_c4": dict(h=8, w=7, c=4, m=20, k=(3, 3), pads=(1, 1, 1, 1)),  # im2col rows, K 36
    "1x1_k64": dict(h=6, w=6, c=64, m=16, k=(1, 1)),           # four groups
}


@pytest.mark.parametrize("combo", ["u8i8", "i8i8"])
@pytest.mark.parametrize("name", list(CROWDED_CONFIGS))
def test_qconv_pair_in_a_k_order_across_groups(name, combo):
    """Layers with more heavy channels in a group of 16 than light partners there (k <= 64):
    on kernels with int16 pair sums they run pair_u8 in a K order that moves channels between
    groups (rows reordered by gpermute_rows), exact at 1 and 2 threads and under every other ISA;
    such a layer offers no packing to a compiled model (it packs again at load)."""
    from edgert import _core
    xt, wt = COMBOS[combo]
    seed = zlib.crc32(f"crowded-{name}-{combo}".encode())
    cs = make_case(seed, xt=xt, wt=wt, yt=xt, **CROWDED_CONFIGS[name])
    shape_weights(cs, "crowded", np.random.default_rng(seed))
    w2d = cs["attrs"]["weight"].reshape(cs["attrs"]["weight"].shape[0], -1)
    assert _core.pair_order(np.ascontiguousarray(w2d), cs["wzp"].astype(np.int32)) is None

    def form(add):
        if _core.isa() == "avx2":
            assert add["x8_form"] == 0 and "x8_perm" not in add and "x8_corr" not in add
            order = np.asarray(add["x8_gperm"])
            k = w2d.shape[1]
            assert sorted(order[:k].tolist()) == list(range(k))
            assert any(order[j] // 16 != j // 16 for j in range(k))  # moved between groups
    # other ISAs unpack the weights into the model's K order and pack them anew
    _check_packed_everywhere(cs, form)


def test_qconv_rejects_a_bad_k_order_across_groups():
    """A stored x8_gperm that is not a permutation of K, is too short, or comes with x8_perm is
    a ModelError naming it."""
    from edgert import _core
    from oplib import make_executor
    if _core.isa() != "avx2":
        pytest.skip("only kernels with gpermute_rows take a stored order across groups")
    seed = zlib.crc32(b"crowded-bad-gperm")
    cs = make_case(seed, xt=np.uint8, wt=np.int8, yt=np.uint8, **CROWDED_CONFIGS["1x1_flat_k40"])
    shape_weights(cs, "crowded", np.random.default_rng(seed))
    outs = [(cs["expect"].shape, cs["yt"])]
    drop, add = make_executor("qconv", [cs["x"]], outs, cs["attrs"], 1).packed_attrs(0)
    good = {**{k: v for k, v in cs["attrs"].items() if k not in drop}, **add}
    np.testing.assert_array_equal(run_op("qconv", [cs["x"]], outs, good, 1)[0], cs["expect"])
    order = np.asarray(add["x8_gperm"], np.uint8)
    bad = {"repeat": order.copy(), "past_k": order.copy(), "short": order[:16].copy(),
           "pad_moved": order.copy()}
    bad["repeat"][1] = bad["repeat"][0]
    bad["past_k"][3] = 41
    bad["pad_moved"][47] = 0
    for what, p in bad.items():
        with pytest.raises(_core.ModelError, match="x8_gperm"):
            make_executor("qconv", [cs["x"]], outs, dict(good, x8_gperm=p), 1)
    both = dict(good, x8_perm=np.arange(48, dtype=np.uint8) % 16)
    with pytest.raises(_core.ModelError, match="x8_gperm"):
        make_executor("qconv", [cs["x"]], outs, both, 1)


# The fused input multiply (mul_* attributes): x·s per channel (a squeeze-and-excitation
# scale), then the 1x1 conv. Shapes: one tile and a column split at 2 threads (7x7x96), many
# rows of K = 16, batches whose images meet inside a tile, a wide K, odd channel counts.
INPUT_MUL_CONFIGS = {
    "7x7x96_to_40": dict(n=1, h=7, w=7, c=96, m=40),
    "28x28x16_to_16": dict(n=1, h=28, w=28, c=16, m=16),
    "batch2_9x8x40": dict(n=2, h=9, w=8, c=40, m=24),
    "14x14x240_to_40": dict(n=1, h=14, w=14, c=240, m=40),
    "batch3_odd": dict(n=3, h=6, w=5, c=5, m=7),
}


def input_mul_case(name, xt, st, clamp):
    """(inputs, attrs, expected) against numpy: qmul's formula (test_op_qbinary.numpy_mul, the
    same as onnxruntime's QLinearMul), then the conv reference on its bytes."""
    from test_op_qbinary import numpy_mul
    cfg = INPUT_MUL_CONFIGS[name]
    seed = zlib.crc32(f"input-mul-{name}-{xt.__name__}-{st.__name__}-{clamp}".encode())
    rng = np.random.default_rng(seed)
    cs = make_case(seed, k=(1, 1), xt=xt, per_channel=True, **cfg)
    n, h, w, c = cs["x"].shape
    xlo, xhi = trange(xt)
    slo, shi = trange(st)
    x = rng.integers(xlo, xhi + 1, (n, h, w, c)).astype(xt)
    s = rng.integers(slo, shi + 1, (n, 1, 1, c)).astype(st)
    a_scale, b_scale = np.float32(rng.uniform(0.01, 0.05)), np.float32(rng.uniform(0.002, 0.01))
    p = {"a_scale": float(a_scale), "a_zp": int(rng.integers(xlo, xhi + 1)),
         "b_scale": float(b_scale), "b_zp": int(rng.integers(slo, shi + 1)),
         "y_scale": float(np.float32(a_scale * b_scale / rng.uniform(0.004, 0.02))),
         "y_zp": cs["x_zp"]}  # the conv reads the product with its own zero point
    if clamp:
        p["qmin"], p["qmax"] = cs["x_zp"], xhi  # a ReLU-like narrowed range
    xm = numpy_mul(x, s, p, xt)
    acc = conv_acc_ref(xm, cs["wq"], cs["wzp"], cs["bias"], cs["x_zp"], (1, 1), (0, 0, 0, 0),
                       (1, 1), 1)
    want = requant_ref(acc, cs["attrs"]["scale"], cs["y_zp"], cs["qmin"], cs["qmax"], cs["yt"])
    attrs = dict(cs["attrs"], **{"mul_" + k: v for k, v in p.items()})
    return [x, s], attrs, want


def test_qconv_input_multiply_every_isa():
    """qconv with a fused input multiply equals numpy's multiply then conv, at 1 and 2 threads,
    for u8/i8 inputs and scales, with and without a narrowed multiply clamp, under every ISA
    this machine runs (the scalar ISA through the multiply's table and the int16 kernels)."""
    cases, expects = [], []
    for name in sorted(INPUT_MUL_CONFIGS):
        for xt, st, clamp in ((U8, U8, False), (U8, I8, True), (I8, U8, True), (I8, I8, False)):
            ins, attrs, want = input_mul_case(name, xt, st, clamp)
            for threads in (1, 2):
                cases.append(("qconv", ins, [(want.shape, want.dtype)], attrs, threads))
                expects.append(want)
    for y, e, c in zip([run_op(*c)[0] for c in cases], expects, cases):
        np.testing.assert_array_equal(y, e, err_msg=str(c[1][0].shape))
    for isa in other_isas():
        for o, e, c in zip(run_under_isa(isa, cases), expects, cases):
            np.testing.assert_array_equal(o[0], e, err_msg=f"{isa}: {c[1][0].shape}")


def test_qconv_input_multiply_rejects_bad_specs():
    from edgert import _core
    ins, attrs, want = input_mul_case("batch2_9x8x40", U8, U8, False)
    out = [(want.shape, want.dtype)]

    def bad(match, inputs=ins, outputs=out, **changes):
        a = dict(attrs, **changes)
        for k in [k for k, v in changes.items() if v is None]:
            del a[k]
        with pytest.raises(_core.ModelError, match=match):
            run_op("qconv", inputs, outputs, a)

    x, s = ins
    bad("S must be", inputs=[x, s[:, :, :, :-1].copy()])  # C - 1 scales
    bad("S must be", inputs=[x, s[:1].copy()])  # one image's scales for two
    bad("S must be u8 or i8", inputs=[x, s.astype(np.int32)])
    bad("expects 2 input", inputs=[x])  # S missing
    bad("mul_a_scale must be a positive finite float", mul_a_scale=float("nan"))
    bad("mul_y_scale must be a positive finite float", mul_y_scale=0.0)
    bad("mul_b_zp = 300 is outside", mul_b_zp=300)
    bad("mul_qmin/mul_qmax", mul_qmin=10, mul_qmax=5)
    bad("1x1, stride-1, unpadded", strides=[2, 2],
        outputs=[((2, 5, 4, want.shape[3]), want.dtype)])
    bad("1x1, stride-1, unpadded", pads=[1, 1, 1, 1],
        outputs=[((2, 11, 10, want.shape[3]), want.dtype)])
