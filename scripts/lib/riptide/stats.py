"""Medians, ratios, and the order of rounds when variants are alternated."""


def median(xs):
    """The middle of the values that are not None (the upper middle of an even
    count, so it is always one of the measured values); None if there are none."""
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def medians(runs, skip=("name",)):
    """Key by key median of a list of dicts (one per run), keys of the first run."""
    if not runs:
        return {}
    return {k: median(r.get(k) for r in runs) for k in runs[0] if k not in skip}


def ratio(a, b):
    """a / b, or None when either is missing or zero."""
    return a / b if a and b else None


def rounds(variants, reps, rotate=True):
    """(rep, variant) for `reps` rounds of every variant, A/B alternated:
    each round runs them all, and with `rotate` each round starts one
    variant later, so none always runs first (A B C, B C A, C A B, ...)."""
    variants = list(variants)
    for rep in range(reps):
        k = rep % len(variants) if rotate and variants else 0
        for v in variants[k:] + variants[:k]:
            yield rep, v


class Samples:
    """Values of repeated runs, by name; their medians at the end.
        s = Samples(); s.add(rps=..., cpu_us=...) per run; s.median("rps")"""

    def __init__(self):
        self.values = {}

    def add(self, **values):
        for k, v in values.items():
            self.values.setdefault(k, []).append(v)

    def median(self, key):
        return median(self.values.get(key, ()))

    def medians(self):
        return {k: median(v) for k, v in self.values.items()}
