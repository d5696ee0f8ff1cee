// TokenSelect's selection on the GPU (soft vote and top-k) against the CPU top_k.
#include "cuda-helpers.hpp"

using namespace attnbench::testing::cuda;

namespace {

// TokenSelect's soft vote of sequence b in float64: per KV head, the softmax of each query
// head's logits (kernels::score_reference's) over candidates [n_init, n_init + n), summed.
std::vector<double> soft_vote(const paged_cache& c, int b, int n_init, int n) {
  std::vector<double> vote(n, 0.0), lg(static_cast<std::size_t>(c.group()) * n);
  for (int h = 0; h < c.hkv; ++h) {
    const head_view hv(c, b, h);
    attnbench::kernels::score_args sa;
    sa.queries = c.group_queries(b, h);
    sa.n_query_heads = c.group();
    sa.head_dim = c.d;
    sa.kv = &hv.view;
    sa.block_size = kBlock;
    sa.dtype = c.dtype;
    sa.first = n_init;
    sa.count = n;
    EXPECT_EQ(attnbench::kernels::score_reference(sa, lg.data()), ATTNBENCH_STATUS_OK);
    for (int g = 0; g < c.group(); ++g) {
      const double* row = &lg[static_cast<std::size_t>(g) * n];
      const double mx = *std::max_element(row, row + n);
      double sum = 0;
      for (int j = 0; j < n; ++j) sum += std::exp(row[j] - mx);
      for (int j = 0; j < n; ++j) vote[j] += std::exp(row[j] - mx) / sum;
    }
  }
  return vote;
}

// TokenSelect's selection: the summed soft vote against float64, and the selected set
// against the CPU top_k of the same scores (so ties and order are checked exactly).
TEST(CudaSelect, SoftVoteAndTopKMatchTheCpu) {
  REQUIRE_GPU();
  for (attnbench_dtype dtype : {ATTNBENCH_DTYPE_FP16, ATTNBENCH_DTYPE_BF16}) {
    const std::vector<int32_t> lens{9000, 700, 2700};
    paged_cache c(3, 8, 2, 128, lens, dtype, 23);
    // Sequence 2: equal keys over a stretch, for ties at the threshold.
    for (int h = 0; h < c.hkv; ++h)
      for (int t = 1000; t < 1400; ++t) {
        const std::size_t r = c.row(2, h, t), r0 = c.row(2, h, 999);
        std::copy_n(&c.k_raw[r0 * c.d], c.d, &c.k_raw[r * c.d]);
      }
    device_cache dc(c);
    const int n_init = 100, n_local = 200;
    for (int top_k : {1, 300, 2048, 100000}) {
      device_buffer<float> scores(std::vector<float>(static_cast<std::size_t>(c.batch) * c.max_len, NAN));
      device_buffer<int32_t> selected(static_cast<std::size_t>(c.batch) * top_k), n_sel(c.batch);
      attnbench_cuda_select_args s{};
      s.dtype = dtype == ATTNBENCH_DTYPE_BF16 ? ATTNBENCH_CUDA_BF16 : ATTNBENCH_CUDA_FP16;
      s.batch = c.batch;
      s.n_query_heads = c.hq;
      s.n_kv_heads = c.hkv;
      s.head_dim = c.d;
      s.queries = dc.q.ptr;
      s.k_pool = dc.k.ptr;
      s.block_table = dc.table.ptr;
      s.max_blocks = c.max_blocks;
      s.lens = dc.lens.ptr;
      s.max_len = c.max_len;
      s.n_init = n_init;
      s.n_local = n_local;
      s.top_k = top_k;
      s.scores = scores.ptr;
      s.selected = selected.ptr;
      s.n_selected = n_sel.ptr;
      ASSERT_EQ(attnbench_cuda_select(&s, 0, nullptr, nullptr), ATTNBENCH_CUDA_OK) << attnbench_cuda_last_error();
      const auto got_scores = scores.get();
      const auto got_sel = selected.get();
      const auto got_n = n_sel.get();
      const int max_cand = c.max_len - n_local - n_init;
      for (int b = 0; b < c.batch; ++b) {
        const int n = lens[b] - n_local - n_init;
        const std::vector<double> vote = soft_vote(c, b, n_init, n);
        double err = 0, norm = 0;
        for (int j = 0; j < n; ++j) {
          const double g = got_scores[static_cast<std::size_t>(b) * max_cand + j];
          err += (g - vote[j]) * (g - vote[j]);
          norm += vote[j] * vote[j];
        }
        EXPECT_LT(std::sqrt(err / norm), 5e-3) << "sequence " << b;
        // The selection: the CPU top_k of the kernel's own scores, as positions, ascending.
        const int k = std::min(top_k, n);
        ASSERT_EQ(got_n[b], k);
        std::vector<std::uint32_t> idx(k);
        attnbench::kernels::top_k(&got_scores[static_cast<std::size_t>(b) * max_cand], n, k, idx.data());
        std::vector<int32_t> want(k);
        for (int i = 0; i < k; ++i) want[i] = n_init + static_cast<int32_t>(idx[i]);
        std::sort(want.begin(), want.end());
        const std::vector<int32_t> got(got_sel.begin() + static_cast<std::ptrdiff_t>(b) * top_k,
                                       got_sel.begin() + static_cast<std::ptrdiff_t>(b) * top_k + k);
        EXPECT_EQ(got, want) << "sequence " << b << ", top_k " << top_k;
      }
    }
  }
}

}  // namespace
