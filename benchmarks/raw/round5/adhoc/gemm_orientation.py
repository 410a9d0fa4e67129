"""GEMM speed of the two stride-2 layers' products for one chunk (16->32: 7 images, 32->64: 14), in both
orientations, 1 BLAS thread, timed alone (hot cache):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/raw/round5/adhoc/gemm_orientation.py
"""
import numpy as np, time
from threadpoolctl import threadpool_limits
threadpool_limits(1)
rng = np.random.default_rng(0)
def t(f, r=300):
    f(); s=time.perf_counter()
    for _ in range(r): f()
    return (time.perf_counter()-s)/r*1e6
for (F,K,N) in [(32,144,1792),(64,288,896)]:
    W = rng.standard_normal((F,K),dtype=np.float32); cols = rng.standard_normal((K,N),dtype=np.float32)
    dy = rng.standard_normal((F,N),dtype=np.float32)
    fl = 2*F*K*N/1e3
    a = t(lambda: W @ cols); b = t(lambda: cols.T @ W.T); c = t(lambda: cols @ dy.T); d = t(lambda: dy @ cols.T); e = t(lambda: W.T @ dy); g = t(lambda: dy.T @ W)
    print(F,K,N, "fwd W@cols %.0f us (%.0f GF/s) | cols^T@W^T %.0f (%.0f) | dW cols@dy^T %.0f (%.0f) | dy@cols^T %.0f (%.0f) | dcols W^T@dy %.0f (%.0f) | dy^T@W %.0f (%.0f)" % (a, fl/a, b, fl/b, c, fl/c, d, fl/d, e, fl/e, g, fl/g))
