#include "safetensors.hpp"

#include <attnbench/host/errors.hpp>
#include <attnbench/kernels/dtype.hpp>

#include <nlohmann/json.hpp>

#include <bit>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <set>

namespace attnbench::detail {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const fs::path& file, const std::string& pointer, const std::string& message) {
  throw config_error(file.string(), pointer, message);
}

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(file, "", "cannot open the weights file");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

std::map<std::string, tensor_f32> read_safetensors(const fs::path& file) {
  static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");
  const std::string bytes = read_all(file);
  std::uint64_t header_len = 0;
  if (bytes.size() < 8) fail(file, "", "not a safetensors file: shorter than its 8-byte header length");
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > bytes.size() - 8) fail(file, "", "not a safetensors file: the header runs past the end");
  json header;
  try {
    header = json::parse(bytes.substr(8, header_len));
  } catch (const json::parse_error& e) {
    fail(file, "", std::string("the header is not JSON: ") + e.what());
  }
  if (!header.is_object()) fail(file, "", "the header is not a JSON object");
  const std::size_t data_begin = 8 + header_len, data_size = bytes.size() - data_begin;
  std::map<std::string, tensor_f32> out;
  for (const auto& [name, h] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string at = "/" + name;
    if (!h.is_object() || !h.contains("dtype") || !h.contains("shape") || !h.contains("data_offsets"))
      fail(file, at, "expected an object with dtype, shape and data_offsets");
    const std::string dtype = h["dtype"].is_string() ? h["dtype"].get<std::string>() : "";
    const std::size_t width = dtype == "F32" ? 4 : (dtype == "F16" || dtype == "BF16") ? 2 : 0;
    if (width == 0)  // the value is not echoed: it may be anything, nested to any depth
      fail(file, at + "/dtype", std::string("expected \"F32\", \"F16\" or \"BF16\", got ") +
                                    (dtype.empty() ? "a " + std::string(h["dtype"].type_name()) : "\"" + dtype.substr(0, 16) + "\""));
    tensor_f32 t;
    t.file = file;
    if (!h["shape"].is_array()) fail(file, at + "/shape", "expected an array");
    // Elements at most the data's bytes over the width: checked as the product grows, so it cannot wrap.
    const std::uint64_t most = data_size / width;
    std::uint64_t count = 1;
    for (const auto& e : h["shape"]) {
      if (!e.is_number_unsigned()) fail(file, at + "/shape", "expected non-negative integers");
      const std::uint64_t dim = e.get<std::uint64_t>();
      if (dim != 0 && count > most / dim) fail(file, at + "/shape", "more elements than the file holds bytes for");
      t.shape.push_back(static_cast<std::int64_t>(dim));
      count *= dim;
    }
    const auto& off = h["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(file, at + "/data_offsets", "expected [begin, end]");
    const std::uint64_t b = off[0], e = off[1];
    if (b > e || e > data_size) fail(file, at + "/data_offsets", "the byte range lies outside the file's data");
    if (e - b != count * width)
      fail(file, at, "holds " + std::to_string(e - b) + " bytes, its shape and dtype need " + std::to_string(count * width));
    t.data.resize(count);
    const attnbench_dtype from = dtype == "F32"   ? ATTNBENCH_DTYPE_FP32
                                 : dtype == "F16" ? ATTNBENCH_DTYPE_FP16
                                                  : ATTNBENCH_DTYPE_BF16;
    // The data need not be aligned within the file: copied out first.
    std::vector<std::byte> raw(count * width);
    std::memcpy(raw.data(), bytes.data() + data_begin + b, raw.size());
    kernels::to_fp32(from, raw.data(), t.data.data(), count);
    out.emplace(name, std::move(t));
  }
  return out;
}

std::map<std::string, tensor_f32> read_safetensors_folder(const fs::path& folder, const std::string& stem) {
  const fs::path index_file = folder / (stem + ".safetensors.index.json");
  std::error_code ec;
  if (!fs::exists(index_file, ec)) return read_safetensors(folder / (stem + ".safetensors"));
  json index;
  try {
    index = json::parse(read_all(index_file));
  } catch (const json::parse_error& e) {
    fail(index_file, "", std::string("not JSON: ") + e.what());
  }
  if (!index.contains("weight_map") || !index["weight_map"].is_object())
    fail(index_file, "/weight_map", "expected an object from tensor names to files");
  std::set<std::string> files;
  for (const auto& [name, f] : index["weight_map"].items()) {
    if (!f.is_string() || f.get<std::string>().find('/') != std::string::npos)
      fail(index_file, "/weight_map/" + name, "expected a file name in the folder");
    files.insert(f.get<std::string>());
  }
  std::map<std::string, tensor_f32> out;
  for (const auto& f : files) out.merge(read_safetensors(folder / f));
  for (const auto& [name, f] : index["weight_map"].items())
    if (!out.count(name) || out.at(name).file.filename() != f.get<std::string>())
      fail(index_file, "/weight_map/" + name, "the tensor is not in " + f.get<std::string>());
  return out;
}

}  // namespace attnbench::detail
