// Heap memory on cache-line (64-byte) boundaries, for packed weights. malloc aligns large blocks
// to 16 bytes only (an mmap'ed page plus its 16-byte header), so a 64-byte load of packed
// weights, one AMX tile row or one zmm, would cross two cache lines on every read: the amx
// kernel's 1024^3 GEMM without its output stage ran 720 us from such a block, 557 us from an
// aligned one. Weights in a .edgert file are 64-byte aligned already (format.py).
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

namespace edgert {

constexpr std::align_val_t kCacheLine{64};

// A std::vector allocator on cache-line boundaries (elements value-initialized as usual).
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kCacheLine)); }
  void deallocate(T* p, size_t) noexcept { ::operator delete(p, kCacheLine); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const noexcept { return false; }
};

template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

// An array of n trivial T on a cache-line boundary, left uninitialized (for packings that write
// every byte: no zero fill of megabytes first).
struct CacheLineDelete {
  void operator()(void* p) const noexcept { ::operator delete(p, kCacheLine); }
};
template <class T>
using AlignedArray = std::unique_ptr<T[], CacheLineDelete>;

template <class T>
AlignedArray<T> aligned_array(size_t n) {
  static_assert(std::is_trivial<T>::value, "aligned_array leaves its elements uninitialized");
  return AlignedArray<T>(static_cast<T*>(::operator new(n * sizeof(T), kCacheLine)));
}

}  // namespace edgert
