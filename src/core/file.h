// Whole-file reads for small files (configs, certificates, golden sets).
#pragma once

#include <string>

#include "core/status.h"

namespace encserve {

// The file's bytes; NOT_FOUND "cannot read <path>" when it cannot be opened.
StatusOr<std::string> ReadFileBytes(const std::string& path);

}  // namespace encserve
