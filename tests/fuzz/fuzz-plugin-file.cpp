// libFuzzer target: the plugin file check that runs before dlopen. It reads every header
// it checks from inside the image; any input gives a verdict, never a crash or a read
// past the end (AddressSanitizer watches the copy below, sized to the input).
#include <attnbench/host/plugin-file.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto copy = std::make_unique<char[]>(size ? size : 1);
  if (size) std::memcpy(copy.get(), data, size);
  (void)attnbench::elf_image_problem(std::string_view(copy.get(), size));
  return 0;
}
