// tinyllm version. CMake parses the three macros below: keep them one per line.
#pragma once

#define TINYLLM_VERSION_MAJOR 0
#define TINYLLM_VERSION_MINOR 1
#define TINYLLM_VERSION_PATCH 0

namespace tinyllm {
inline constexpr const char* version_string = "0.1.0";
}  // namespace tinyllm
