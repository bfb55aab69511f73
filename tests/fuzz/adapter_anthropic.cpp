// The anthropic provider plugin's response and stream parsers on hostile upstream
// answers; see adapter_fuzz.h for how one input is used.
#include <cstddef>
#include <cstdint>

#include "adapter_fuzz.h"

// Loads the plugin before fuzzing starts, so libFuzzer counts its coverage
// from the first input on.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ferry::fuzz::adapter_for("anthropic");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ferry::fuzz::fuzz_adapter("anthropic", data, size);
}
