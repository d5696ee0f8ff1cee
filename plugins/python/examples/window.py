"""The first `sinks` and the last `window` cached tokens at every decode step (StreamingLLM's
pattern, Xiao et al., arXiv 2309.17453, without its eviction): a python policy that plans
token lists, and reads block metadata only to show where it is."""
import numpy as np


class Window:
    def __init__(self, model, sinks=4, window=1020):
        self.sinks, self.window = sinks, window

    def plan(self, request):
        entries = []
        for head in request.kv:
            n = head.n_tokens
            if n <= self.sinks + self.window:
                entries.append(None)  # every token
            else:
                entries.append(np.r_[0:self.sinks, n - self.window:n])
        return entries
