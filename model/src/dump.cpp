#include <attnbench/model/dump.hpp>

#include <attnbench/host/errors.hpp>

#include <attnbench/kernels/dtype.hpp>
#include <attnbench/kernels/kv-cache.hpp>

#include <fstream>
#include <vector>

namespace attnbench {

namespace {

std::ofstream open_out(const std::filesystem::path& file) {
  std::ofstream f(file, std::ios::binary | std::ios::trunc);
  if (!f) throw output_error("dump-kv: cannot write " + file.string());
  return f;
}

void check_written(std::ofstream& f, const std::filesystem::path& file) {
  f.flush();
  if (!f) throw output_error("dump-kv: writing " + file.string() + " failed (disk full?)");
}

}  // namespace

nlohmann::ordered_json dump_kv(const model& m, const tasks::task& task, const dump_request& req,
                               const std::filesystem::path& dir) {
  const model_shape& p = m.shape();
  const std::uint32_t d = p.head_dim;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw output_error("dump-kv: cannot create " + dir.string() + ": " + ec.message());

  const tasks::sample smp = tasks::make_indexed_sample(task, req.seed, req.context_length, req.sample);
  kernels::kv_cache cache(p.n_layers, p.n_kv_heads, d, req.block_size, req.dtype);
  const auto seq = m.start_sequence(smp.prompt, cache);
  const std::size_t row_bytes = static_cast<std::size_t>(d) * kernels::dtype_size(req.dtype);

  const auto k_file = dir / "k.bin", v_file = dir / "v.bin", q_file = dir / "q.bin";
  std::ofstream kf = open_out(k_file), vf = open_out(v_file), qf = open_out(q_file);
  std::uint64_t n_tokens = 0;
  std::vector<float> queries(static_cast<std::size_t>(p.n_query_heads) * d);
  for (std::uint32_t layer = 0; layer < p.n_layers; ++layer) {
    const attnbench_kv_layer_view& view = cache.layer_view(layer);
    for (std::uint32_t h = 0; h < p.n_kv_heads; ++h) {
      const attnbench_kv_head_view& hv = view.heads[h];
      n_tokens = hv.n_tokens;
      for (std::uint32_t b = 0; b < hv.n_blocks; ++b) {
        const std::uint64_t rows = std::min<std::uint64_t>(req.block_size, hv.n_tokens - std::uint64_t{b} * req.block_size);
        kf.write(static_cast<const char*>(hv.key_blocks[b]), static_cast<std::streamsize>(rows * row_bytes));
        vf.write(static_cast<const char*>(hv.value_blocks[b]), static_cast<std::streamsize>(rows * row_bytes));
      }
    }
    seq->queries(layer, queries.data());
    qf.write(reinterpret_cast<const char*>(queries.data()), static_cast<std::streamsize>(queries.size() * sizeof(float)));
  }
  check_written(kf, k_file);
  check_written(vf, v_file);
  check_written(qf, q_file);

  nlohmann::ordered_json roles = nlohmann::ordered_json::array();
  for (const auto& layer : p.roles) {
    nlohmann::ordered_json l = nlohmann::ordered_json::array();
    for (auto r : layer) l.push_back(head_role_name(r));
    roles.push_back(l);
  }
  nlohmann::ordered_json meta = {
      {"profile", p.name},
      {"task", req.task_name},
      {"context_length", req.context_length},
      {"seed", req.seed},
      {"sample", req.sample},
      {"sample_seed", tasks::sample_seed(req.seed, task.name(), req.context_length, req.sample)},
      {"prompt_hash", prompt_hash(smp.prompt)},
      {"n_tokens", n_tokens},
      {"n_layers", p.n_layers},
      {"n_query_heads", p.n_query_heads},
      {"n_kv_heads", p.n_kv_heads},
      {"head_dim", d},
      {"block_size", req.block_size},
      {"dtype", std::string(kernels::dtype_name(req.dtype))},
      {"scale", m.scale()},
      {"roles", roles},
      {"files",
       {{"k", "k.bin: [layer][kv_head][token][head_dim], dtype"},
        {"v", "v.bin: [layer][kv_head][token][head_dim], dtype"},
        {"q", "q.bin: [layer][query_head][head_dim], fp32, unscaled, first decode step"}}}};
  const auto meta_file = dir / "meta.json";
  std::ofstream mf = open_out(meta_file);
  mf << meta.dump(2) << "\n";
  check_written(mf, meta_file);
  return meta;
}

}  // namespace attnbench
