// SHA-256 (OpenSSL) of bytes and of files, as lowercase hex.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace encserve {

// 64 lowercase hex digits.
std::string Sha256Hex(std::string_view bytes);
// The file's digest, read in 1-MiB blocks; NOT_FOUND / INTERNAL naming the file on errors.
StatusOr<std::string> Sha256FileHex(const std::string& path);

}  // namespace encserve
