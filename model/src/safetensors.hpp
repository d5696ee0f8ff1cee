// Reading weights in the safetensors format (https://github.com/huggingface/safetensors,
// the field's convention): an 8-byte little-endian header length, a JSON header giving
// each tensor's dtype, shape and byte range, then the raw little-endian data. A model
// split into shards has STEM.safetensors.index.json mapping tensors to files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace attnbench::detail {

struct tensor_f32 {
  std::vector<std::int64_t> shape;
  std::vector<float> data;  // converted from F32, F16 or BF16
  std::filesystem::path file;
};

// Every tensor of one file. Throws config_error naming the file on a malformed header, an
// unknown dtype, a byte range outside the file or one that disagrees with the shape.
std::map<std::string, tensor_f32> read_safetensors(const std::filesystem::path& file);

// FOLDER/STEM.safetensors.index.json's shards when the index exists, else FOLDER/STEM.safetensors.
std::map<std::string, tensor_f32> read_safetensors_folder(const std::filesystem::path& folder,
                                                          const std::string& stem);

}  // namespace attnbench::detail
