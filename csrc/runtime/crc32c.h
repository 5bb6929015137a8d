// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of .edgert files.
// crc32c(data, n, 0) of "123456789" is 0xE3069283; passing a previous result as `crc` continues
// it over more data. Uses the SSE4.2 crc32 instruction when the CPU has it (checked at run time),
// a table otherwise; both give identical results.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc = 0);  // the table form
bool crc32c_hardware();  // true when crc32c uses the CPU instruction

}  // namespace edgert
