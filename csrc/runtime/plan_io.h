// The binary plan of an .edgert file (format version 3): read straight into a Plan in C++, with
// constant and weight arrays left in place in the file's blob area (no copy, no Python objects).
//
// Little-endian, unaligned, every count and length checked against the bytes that remain:
//   u64 arena_bytes
//   u32 n_blobs,   per blob:   u8 dtype, u8 rank, i64 dims[rank], u64 offset, u64 nbytes
//   u32 n_tensors, per tensor: u8 kind, u8 dtype, u8 rank, i64 dims[rank],
//                              then i64 arena offset (kind arena) or u32 blob (kind const)
//   u32 n_ops,     per op:     str type, str name, u32 n + u32 ids (inputs), the same (outputs),
//                              u32 n_attrs, per attr: str key, u8 kind, value
//   u32 n + u32 ids (plan inputs), the same (plan outputs); nothing after.
// str: u32 length + bytes. dtype: 0 u8, 1 i8, 2 i32, 3 i64, 4 f32. kind: 0 arena, 1 input,
// 2 output, 3 const. attr kind and value: 0 Int i64, 1 Float f64, 2 Ints (u32 n + i64s),
// 3 Floats (u32 n + f64s), 4 Str (str), 5 Arr (u32 blob). Blob offsets are relative to the blob
// area and aligned to their element size. What the executor checks (ids, arena bounds, shapes
// against ops) it still checks; this reader guarantees only that nothing is read out of bounds
// and that no count asks for more memory than the plan's own bytes could describe.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/executor.h"

namespace edgert {

Plan read_binary_plan(const uint8_t* plan, size_t plan_len, const uint8_t* blobs,
                      size_t blobs_len);

}  // namespace edgert
