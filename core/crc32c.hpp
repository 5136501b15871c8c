#pragma once
// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), as used by iSCSI, ext4, Kafka record
// batches and our log records. Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice {

/// CRC32C of `data`, continuing from `crc` (the CRC of the preceding bytes; 0 to start), so that
/// crc32c(b, crc32c(a)) == crc32c(a + b). crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0);

inline std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0) {
  return crc32c(data.data(), data.size(), crc);
}

/// The portable table implementation, whatever the CPU (for tests that compare both paths).
std::uint32_t crc32c_software(const void* data, std::size_t size, std::uint32_t crc = 0);

/// True when crc32c() uses the hardware instruction on this machine.
bool crc32c_hardware_available();

}  // namespace sluice
