// The run-time flags of a direct 8-bit elementwise kernel (q8-vadd, q8-vmul) as template
// arguments: q8_binary_dispatch<K>(x_signed, s_signed, s_scalar, args...) calls
// K::run<x_signed, s_signed, s_scalar>(args...). K is a kernel file's own type (anonymous
// namespace), so every instantiation stays inside that file: no copy compiled for one ISA can
// be the one the linker keeps for another.
#pragma once

namespace edgert {

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
