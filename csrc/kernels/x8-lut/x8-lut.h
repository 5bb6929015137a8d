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

// y[i] = table[a[i] * 256 + b[i]] for i < n; table has 65536 entries (a major).
void x8_lut2_ukernel__scalar(size_t n, const uint8_t* a, const uint8_t* b, const uint8_t* table,
                             uint8_t* y);

}  // namespace edgert
