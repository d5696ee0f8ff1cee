# Python policies that go wrong in each way the python plugin must report (tests/plugins/test-python-policy.cpp).
import numpy as np


class RaisesInPlan:
    def __init__(self, model):
        self.model = model

    def plan(self, request):
        raise ValueError("no plan today")  # line 10: the test looks for it


class RaisesInPrefill:
    def __init__(self, model):
        pass

    def on_prefill(self, request):
        return {}["missing"]

    def plan(self, request):
        return None


class NotAList:
    def __init__(self, model):
        pass

    def plan(self, request):
        return 42


class WrongCount:
    def __init__(self, model):
        pass

    def plan(self, request):
        return [None] * 7


class KeepsAView:
    def __init__(self, model):
        self.saved = None

    def plan(self, request):
        if self.saved is not None:
            self.saved()
        self.saved = request.kv[0].key_blocks
        return None


class NoPlan:
    def __init__(self, model):
        pass


class Echo:
    """Plans every head's blocks in reverse and reports what it saw."""

    def __init__(self, model, tag="x"):
        self.model, self.tag, self.seen = model, tag, {}

    def on_prefill(self, request):
        self.seen["prefill_tokens"] = request.n_prompt_tokens
        return [np.arange(h.n_tokens)[::-1] for h in request.kv]  # unsorted: the plugin sorts a keep set

    def plan(self, request):
        self.seen["queries_shape"] = list(request.queries.shape)
        self.seen["writeable"] = bool(request.queries.flags.writeable)
        blocks = request.kv[0].key_blocks()
        self.seen["block_rows"] = sum(b.shape[0] for b in blocks)
        self.seen["dtype"] = str(blocks[0].dtype)
        return [("blocks", np.arange(h.n_blocks)[::-1]) for h in request.kv]

    def stats(self):
        return {"block_rows": np.int64(self.seen.get("block_rows", -1))}  # a NumPy scalar reads as a number


class KeepsQueries:
    def __init__(self, model):
        self.saved = []

    def plan(self, request):
        self.saved.append(request.queries[:1])  # a view on the host's memory, kept
        return None


class FloatIndices:
    def __init__(self, model):
        pass

    def plan(self, request):
        return [np.array([0.5])] * len(request.kv)


class NumpyRaises:
    def __init__(self, model):
        pass

    def plan(self, request):
        return [np.argpartition(np.zeros(3), 10)] * len(request.kv)  # line 100: kth out of range inside numpy
