// Fuzz target: stop strings over arbitrary token boundaries. The input is a prompt, up to 8 stop
// strings and a run of tokens (each a length byte and its bytes). StopStringMatcher must report a stop
// at exactly the first token after which a stop string occurs in prompt + tokens overlapping that
// token (Hugging Face's StopStringCriteria), which the plain search over the whole text here decides.
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include <tinyllm/generation/stop_strings.hpp>

#include "fuzz.hpp"

namespace {

// Whether a stop string ends in text(n - last, n]: the oracle, over the whole text.
bool ends_in_last(const std::string& text, std::size_t last, const std::vector<std::string>& stops) {
  for (const std::string& s : stops)
    for (std::size_t end = text.size() - last + 1; end <= text.size(); ++end)
      if (end >= s.size() && text.compare(end - s.size(), s.size(), s) == 0) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const std::string prompt = in.str(64);
  std::vector<std::string> stops(in.byte() % 9);
  for (std::string& s : stops) {
    s = in.str(16);
    if (s.empty()) s = "\n";  // validate() rejects an empty stop string
  }
  tinyllm::detail::StopStringMatcher matcher(&stops);
  matcher.prime(prompt);
  std::string text = prompt;
  while (!in.empty()) {
    const std::string token = in.str(12);
    text += token;
    const bool stop = matcher.push(token);
    FUZZ_CHECK(stop == (!stops.empty() && ends_in_last(text, token.size(), stops)));
    if (stop) break;  // generation ends here
  }
  return 0;
}
