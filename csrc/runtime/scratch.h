// Per-thread work memory for ops' kernel calls (im2col tiles, prepared rows, staging rows,
// pointer tables). One block per thread that only grows and is kept until the thread ends: a
// run of a small model otherwise paid a malloc, a zero fill and a free for every buffer of every
// op (DS-CNN: 13 ops in about 55 us). Contents are unspecified when taken: callers write what
// they read, or fill it themselves.
//
// A take is valid until the same thread takes again, so a caller must not take while it still
// uses an earlier take, nor call code that takes (kernels never do). Chunks of a parallel_for run
// one after another on a thread, so an op takes once per chunk.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

// Offsets of several buffers inside one take, each aligned to 64 bytes.
class ScratchLayout {
 public:
  size_t add(size_t bytes) {
    const size_t off = (total_ + 63) / 64 * 64;
    total_ = off + bytes;
    return off;
  }
  size_t total() const { return total_; }

 private:
  size_t total_ = 0;
};

// At least `bytes` bytes of this thread's block `slot`, 64-byte aligned; throws std::bad_alloc.
// Slot 0 for a kernel call's buffers (a chunk of a parallel_for), slot 1 for what an op builds
// before its parallel_for and its chunks read (the calling thread runs chunks too).
uint8_t* thread_scratch(size_t bytes, int slot = 0);

}  // namespace edgert
