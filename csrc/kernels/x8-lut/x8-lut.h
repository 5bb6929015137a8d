// x8-lut: byte-to-byte table lookups, the run-time half of every 8-bit op whose result depends
// only on its 8-bit operand(s) (qlut, qconcat requantization, qadd and qmul).
//
// Operands are read as raw bytes (uint8 bit patterns), so one kernel serves u8 and i8 alike:
// an int8 value v indexes the table at uint8_t(v).
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

// y[i] = table[x[i]] for i < n; table has 256 entries. x and y may be the same buffer.
void x8_lut_ukernel__scalar(size_t n, const uint8_t* x, const uint8_t* table, uint8_t* y);

using X8LutFn = void (*)(size_t n, const uint8_t* x, const uint8_t* table, uint8_t* y);
// The same over `rows` rows of n bytes: y[r * y_stride + i] = table[x[r * x_stride + i]]. One
// call for a tile's columns of a wider tensor (a qconv's output table on its thread's column
// part), the table loaded into registers once, not once a row. x and y may be the same buffer.
using X8LutRowsFn = void (*)(size_t rows, size_t n, const uint8_t* x, size_t x_stride,
                             const uint8_t* table, uint8_t* y, size_t y_stride);

struct X8LutUKernel {
  const char* name;
  X8LutFn fn;         // y[i] = table[x[i]], as x8_lut_ukernel__scalar
  X8LutRowsFn rows;   // fn over rows; fn is rows with one row
};

extern const X8LutUKernel x8_lut__scalar;
// AVX2: 32 bytes a step, the table as 16 rows of 16 looked up with vpshufb by the low nibble,
// the high nibble choosing among them by a tree of 15 vpblendvb on its bits.
extern const X8LutUKernel x8_lut__avx2;
// AVX-512: with VBMI (CPUID 7.0 ECX bit 1; Ice Lake, Zen 4 and later) 64 bytes a step, two
// vpermi2b over the table's halves and a masked blend on bit 7; without it the AVX2 kernel.
extern const X8LutUKernel x8_lut__avx512vnni;
// AArch64: 16 bytes a step, TBL over the first 64 entries and TBX over each next quarter.
extern const X8LutUKernel x8_lut__neon;
// The variant for the active ISA (all give the same bytes).
X8LutFn x8_lut_ukernel();
X8LutRowsFn x8_lut_rows_ukernel();

// y[i] = table[a[i] * 256 + b[i]] for i < n; table has 65536 entries (a major).
void x8_lut2_ukernel__scalar(size_t n, const uint8_t* a, const uint8_t* b, const uint8_t* table,
                             uint8_t* y);

}  // namespace edgert
