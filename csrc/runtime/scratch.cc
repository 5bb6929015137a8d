#include "runtime/scratch.h"

#include <cstdlib>
#include <new>

namespace edgert {
namespace {

struct Block {
  uint8_t* mem = nullptr;
  size_t size = 0;
  ~Block() { std::free(mem); }
};
thread_local Block t_block[2];

}  // namespace

uint8_t* thread_scratch(size_t bytes, int slot) {
  Block& b = t_block[slot & 1];
  if (bytes > b.size) {
    // Room to grow into: the next larger take (another op's) does not reallocate again.
    const size_t size = (bytes + bytes / 2 + 4095) / 4096 * 4096;
    void* p = std::aligned_alloc(64, size);
    if (p == nullptr) throw std::bad_alloc();
    std::free(b.mem);
    b.mem = static_cast<uint8_t*>(p), b.size = size;
  }
  return b.mem;
}

}  // namespace edgert
