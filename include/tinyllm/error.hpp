// tinyllm::Error, the one exception type for load and user errors, and TINYLLM_ASSERT for hot-path
// invariants (compiled out with NDEBUG). Depends on nothing else in tinyllm.
#pragma once

#include <cassert>    // assert
#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

namespace tinyllm {

// Thrown for every load or user error. what() names the file or argument and the problem, e.g.
// "model.safetensors: tensor h.3.mlp.c_fc.weight has shape [768,3071], expected [768,3072]".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
// "where: what", the shape of every message.
[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
  throw Error(where.empty() ? what : where + ": " + what);
}
}  // namespace detail

}  // namespace tinyllm

// Hot-path invariants: checked in debug builds only. Load and user errors throw tinyllm::Error instead.
#define TINYLLM_ASSERT(cond) assert(cond)
