"""
The significance tests of compare.py, in plain Python (no scipy): Welch's t-test of two arms' seeds,
and the paired t-test by seed, for two arms trained on the same seeds. The arms of one seed see the
same batches in the same order and start from the same draw of the generator, so the difference of
one seed's two runs removes what the seed does to both; where the arms share seeds the paired test is
the sharper one, and compare.py reports both.

Usage:
    from stats import paired, welch
    t, df, p = welch([204.1, 208.2, 202.6], [199.0, 201.6, 197.6])
    t, df, p, n = paired({42: 204.1, 43: 208.2, 44: 202.6}, {42: 199.0, 43: 201.6, 44: 197.6})
"""
import math
import statistics


def student_t_p(t, df):
    """Two-sided p-value of Student's t with df degrees of freedom: I_{df/(df+t²)}(df/2, 1/2)."""
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def incomplete_beta(a, b, x):
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (Lentz)."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast only below this point
        return 1.0 - incomplete_beta(b, a, 1 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)) / a
    tiny, f, c, d = 1e-300, 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-15:
            break
    return front * (f - 1.0)


def welch(x, y):
    """Welch's t-test of two samples: (t, degrees of freedom, two-sided p)."""
    vx, vy = statistics.variance(x) / len(x), statistics.variance(y) / len(y)
    diff = statistics.mean(x) - statistics.mean(y)
    if vx + vy == 0:
        return (math.inf if diff else 0.0), math.inf, (0.0 if diff else 1.0)
    t = diff / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    return t, df, student_t_p(t, df)


def paired(x, y):
    """The paired t-test of two arms over the seeds both ran, x and y {seed: value}: (t, degrees of
    freedom, two-sided p, number of pairs), or None with fewer than two shared seeds. t > 0: x is higher."""
    seeds = sorted(x.keys() & y.keys())
    if len(seeds) < 2:
        return None
    d = [x[s] - y[s] for s in seeds]
    sd, mean = statistics.stdev(d), statistics.mean(d)
    if sd == 0:  # every seed moved by the same amount: certain, unless by nothing
        return (math.inf if mean else 0.0), len(d) - 1, (0.0 if mean else 1.0), len(d)
    t = mean / (sd / math.sqrt(len(d)))
    return t, len(d) - 1, student_t_p(t, len(d) - 1), len(d)
