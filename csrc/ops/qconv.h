// The int8 convolution engine behind qconv and qgemm (a qgemm is a 1x1 conv over a [1,1,M,K]
// image). Factories parse and validate their attributes into a Q8ConvDesc; make_q8_conv packs the
// weights and picks the kernels once: depthwise direct (q8-dwconv); otherwise the fastest exact
// GEMM form for the layer's weights (q8-gemm-x8 pair_u8 or sign_s8 on byte rows, 1x1 convs read
// straight from NHWC; else int16 q8-gemm on im2col tiles). See q8-gemm-x8.h for the forms.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/q8-gemm/q8-gemm.h"
#include "kernels/q8-im2col/q8-im2col.h"
#include "kernels/q8-vmul/q8-vmul.h"
#include "runtime/op.h"

namespace edgert {

// Weights a compiled model stores already packed in the byte form (see Q8ConvOp::packed_attrs):
// used in place when the running ISA's byte kernel has the same column block, else unpacked.
struct Q8Prepacked {
  const int8_t* w = nullptr;  // q8_gemm_x8_packed_size(M/group, K, nr) bytes per group
  int64_t w_len = 0;
  int form = 0;  // Q8GemmForm pair_u8 or sign_s8, or 2: pair_u8 that needs exact_pairs kernels,
                 // or 3: 2 on W − z0 with the rest of w_zp per row (qconv_engine.cc, kRowZp)
  size_t nr = 0;
  const int32_t* bias = nullptr;  // corrected for the form and input type, padded per group
  const float* scale = nullptr;   // padded per group like bias
  int64_t bias_len = 0, scale_len = 0;
  std::string layout;             // the packing's fingerprint (see qconv_engine.cc)
  const int32_t* corr = nullptr;  // pair_u8 weights moved out: (channel, k, w') triples
  int64_t corr_len = 0;
  const uint8_t* perm = nullptr;  // pair_u8 in another K order: q8_gemm_x8_permute_rows' mask
  int64_t perm_len = 0;
  const uint8_t* gperm = nullptr;  // a K order across groups: q8_gemm_x8_gpermute_rows' order
  int64_t gperm_len = 0;
};

// Depthwise weights a compiled model stores as the running kernel packed them (int16 arrays as
// bytes), tagged with that packing's fingerprint: used in place when it matches, else repacked
// from `weight` (which stays in the model).
struct Q8DwPrepacked {
  std::string layout;
  const int16_t* w = nullptr;   // the variant's pack
  const int16_t* w3 = nullptr;  // its pack3x3, or nullptr
  int64_t w_bytes = 0, w3_bytes = 0;
};

struct Q8ConvDesc {
  DType x_type, y_type, w_type;  // u8/i8; u8/i8/f32; u8/i8
  size_t batch = 1;
  Q8ConvGeom geom{};
  size_t group = 1, m = 0;       // output channels, all groups
  const void* w = nullptr;       // [m][KH·KW·C/group], kept alive by the executor while creating
  const int32_t* w_zp = nullptr; // [m]
  const int32_t* bias = nullptr; // [m]
  const float* scale = nullptr;  // [m]
  int32_t x_zp = 0;
  Q8Requant rq{};
  std::vector<int64_t> w_shape;  // the weight's shape as the model gives it
  Q8Prepacked pre;               // pre.w == nullptr: w holds the weights
  Q8DwPrepacked dw_pre;          // dw_pre.w == nullptr: pack the depthwise weights at creation
  // 'out_table' (256 bytes, u8/i8 output only): each output byte y becomes out_table[y] (byte y
  // as an index), an 8-bit activation lowering fused into its producer (a qlut's table).
  const uint8_t* out_table = nullptr;
  // A fused input multiply ('mul_*' attributes; a 1x1, stride-1, unpadded conv of one group):
  // the conv reads x·s, X (input 0, the multiply's A operand) [N,H,W,C] and S (input 1)
  // [N,1,1,C], each byte as the qmul op computes it (q8-vmul's formula, `mul`; its output type
  // is X's), made a tile at a time, never stored whole: a squeeze-and-excitation block's channel
  // scaling folded into the 1x1 projection that reads it.
  bool x_mul = false;
  bool mul_s_signed = false;
  Q8MulParams mul{};
};

// The weight's shape and type: from the 'weight' array, or for prepacked weights from
// 'weight_shape' and 'weight_dtype'.
std::vector<int64_t> q8_weight_shape(const OpSpec& spec, DType* w_type);

// Reads weight ([m, ...] u8/i8), w_zp, bias, scale, x_zp (if use_x_zp), y_zp, qmin, qmax and the
// input/output dtypes of spec into d, validating every range; k is the weight's elements per
// output channel.
void parse_q8_quant(const OpSpec& spec, size_t m, size_t k, bool use_x_zp, Q8ConvDesc& d);

std::unique_ptr<Op> make_q8_conv(const OpSpec& spec, const Q8ConvDesc& d);

// For W [n][k] (u8 if w_u8 else i8) with per-column zero points: whether every adjacent pair of
// w' = W − w_zp passes the pair_u8 test in every column (|sum of its positive or its negative
// weights| <= 128: u8 activations times the pair cannot leave int16), and a K order in which
// they do (the mask of q8_gemm_x8_permute_rows: within each group of 16, position j reads
// channel 16g + mask[16g + j]; round_up(k, 16) entries: a perfect matching per group, found
// exactly), empty when no group order passes. The conv engine runs pair_u8 on such an order; lowering folds it into a
// conv -> depthwise -> 1x1 chain (the channel order between them is free) so no row is permuted
// at run time.
bool q8_pairs_pass(const uint8_t* w, bool w_u8, const int32_t* w_zp, size_t n, size_t k);
std::vector<uint8_t> q8_pair_order(const uint8_t* w, bool w_u8, const int32_t* w_zp, size_t n,
                                   size_t k);

}  // namespace edgert
