// The run-time flags of a direct 8-bit elementwise kernel (q8-vadd, q8-vmul) as template
// arguments: q8_binary_dispatch<K>(x_signed, s_signed, s_scalar, args...) calls
// K::run<x_signed, s_signed, s_scalar>(args...). K is a kernel file's own type (anonymous
// namespace), so every instantiation stays inside that file: no copy compiled for one ISA can
// be the one the linker keeps for another.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

// The AVX-512 kernels' walk over n elements: one16(i, mask) for [i, i + 16), four blocks a step,
// then single blocks, then the last n % 16 elements under a mask (Mask: __mmask16; taken as a
// parameter so that this header needs no AVX-512 types of its own). one16 is a lambda of the
// kernel file, so this stays inside it too.
template <class Mask, class One16>
inline void q8_binary_steps16(size_t n, One16 one16) {
  const Mask all = Mask(0xFFFF);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    one16(i, all);
    one16(i + 16, all);
    one16(i + 32, all);
    one16(i + 48, all);
  }
  for (; i + 16 <= n; i += 16) one16(i, all);
  if (i < n) one16(i, Mask((1u << (n - i)) - 1));
}

template <class K, bool XS, bool SS, class... A>
inline void q8_binary_scalar(bool s_scalar, const A&... a) {
  if (s_scalar) K::template run<XS, SS, true>(a...);
  else K::template run<XS, SS, false>(a...);
}

template <class K, class... A>
inline void q8_binary_dispatch(bool x_signed, bool s_signed, bool s_scalar, const A&... a) {
  if (x_signed) {
    if (s_signed) q8_binary_scalar<K, true, true>(s_scalar, a...);
    else q8_binary_scalar<K, true, false>(s_scalar, a...);
  } else {
    if (s_signed) q8_binary_scalar<K, false, true>(s_scalar, a...);
    else q8_binary_scalar<K, false, false>(s_scalar, a...);
  }
}

}  // namespace edgert
