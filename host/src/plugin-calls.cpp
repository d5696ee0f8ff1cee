#include <attnbench/host/plugin-calls.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <atomic>
#include <cstring>

namespace attnbench {

namespace {

constexpr int kSlots = 512;  // threads beyond this share the last slot

struct slot {
  std::atomic<std::uint32_t> library_plus_one;  // 0: no call
  std::atomic<std::uint32_t> op, layer, step;
};

struct board {
  slot slots[kSlots];
  std::atomic<int> crash_signal;
  std::atomic<std::uintptr_t> crash_pc;
  std::atomic<int> crash_slot;
};

board g_local_board;
board* g_board = &g_local_board;
std::atomic<int> g_next_slot{0};
thread_local int t_slot = -1;

int my_slot() {
  if (t_slot < 0) t_slot = std::min(g_next_slot.fetch_add(1, std::memory_order_relaxed), kSlots - 1);
  return t_slot;
}

constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

std::uintptr_t fault_pc(void* context) {
  const auto* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.pc);
#else
  (void)uc;
  return 0;
#endif
}

// Async-signal-safe: atomic stores, then the default action and return; the faulting
// instruction runs again and the worker dies by the signal (abort raises SIGABRT again),
// also in a sanitizer build, whose handler would turn the death into exit status 1.
void on_crash(int sig, siginfo_t*, void* context) {
  board* b = g_board;
  if (b->crash_signal.load(std::memory_order_relaxed) == 0) {
    b->crash_pc.store(fault_pc(context), std::memory_order_relaxed);
    b->crash_slot.store(t_slot, std::memory_order_relaxed);
    b->crash_signal.store(sig, std::memory_order_release);
  }
  signal(sig, SIG_DFL);
}

plugin_call_record read_slot(const slot& s) {
  plugin_call_record r;
  r.library = static_cast<int>(s.library_plus_one.load(std::memory_order_relaxed)) - 1;
  r.op = static_cast<plugin_op>(s.op.load(std::memory_order_relaxed));
  r.layer = s.layer.load(std::memory_order_relaxed);
  r.step = s.step.load(std::memory_order_relaxed);
  return r;
}

}  // namespace

const char* plugin_op_name(plugin_op op) {
  switch (op) {
    case plugin_op::none: return "none";
    case plugin_op::create: return "create";
    case plugin_op::destroy: return "destroy";
    case plugin_op::plan: return "plan";
    case plugin_op::on_prefill: return "on_prefill";
    case plugin_op::stats: return "stats_json";
    case plugin_op::state_size: return "state_size";
    case plugin_op::terminator_check: return "reset/check";
  }
  return "unknown";
}

plugin_call::plugin_call(int library, plugin_op op, std::uint32_t layer, std::uint32_t step) noexcept
    : slot_(my_slot()) {
  slot& s = g_board->slots[slot_];
  saved_[0] = s.library_plus_one.load(std::memory_order_relaxed);
  saved_[1] = s.op.load(std::memory_order_relaxed);
  saved_[2] = s.layer.load(std::memory_order_relaxed);
  saved_[3] = s.step.load(std::memory_order_relaxed);
  s.op.store(static_cast<std::uint32_t>(op), std::memory_order_relaxed);
  s.layer.store(layer, std::memory_order_relaxed);
  s.step.store(step, std::memory_order_relaxed);
  s.library_plus_one.store(static_cast<std::uint32_t>(library + 1), std::memory_order_release);
}

plugin_call::~plugin_call() {
  slot& s = g_board->slots[slot_];
  s.library_plus_one.store(saved_[0], std::memory_order_relaxed);
  s.op.store(saved_[1], std::memory_order_relaxed);
  s.layer.store(saved_[2], std::memory_order_relaxed);
  s.step.store(saved_[3], std::memory_order_relaxed);
}

namespace call_board {

void share() {
  if (g_board != &g_local_board) return;
  void* p = mmap(nullptr, sizeof(board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;  // attribution falls back to this process's own board
  std::memset(p, 0, sizeof(board));
  g_board = static_cast<board*>(p);
}

void clear() {
  for (auto& s : g_board->slots) s.library_plus_one.store(0, std::memory_order_relaxed);
  g_board->crash_signal.store(0, std::memory_order_relaxed);
  g_board->crash_pc.store(0, std::memory_order_relaxed);
  g_board->crash_slot.store(-1, std::memory_order_relaxed);
}

std::vector<plugin_call_record> active() {
  std::vector<plugin_call_record> out;
  for (const auto& s : g_board->slots)
    if (const plugin_call_record r = read_slot(s); r.library >= 0) out.push_back(r);
  return out;
}

crash_record last_crash() {
  crash_record c;
  c.signal = g_board->crash_signal.load(std::memory_order_acquire);
  if (c.signal == 0) return c;
  c.pc = g_board->crash_pc.load(std::memory_order_relaxed);
  const int s = g_board->crash_slot.load(std::memory_order_relaxed);
  if (s >= 0 && s < kSlots) c.call = read_slot(g_board->slots[s]);
  return c;
}

void install_crash_handlers() {
  for (const int sig : kCrashSignals) {
    struct sigaction sa {};
    sa.sa_sigaction = on_crash;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
}

}  // namespace call_board

}  // namespace attnbench
