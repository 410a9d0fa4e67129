"""The forward product of a multi-image chunk: one 2-D GEMM then a transpose into (n, F, P), against a
stacked matmul or a loop of per-image GEMMs writing (n, F, P) directly; 1 BLAS thread, hot cache:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/raw/round5/adhoc/forward_gemm_per_image.py
"""
import numpy as np, time
from threadpoolctl import threadpool_limits
threadpool_limits(1)
rng = np.random.default_rng(0)
def t(f, r=200):
    f(); s=time.perf_counter()
    for _ in range(r): f()
    return (time.perf_counter()-s)/r*1e6
for (F,K,n,P) in [(64,288,14,64),(32,144,7,256)]:
    W = rng.standard_normal((F,K),dtype=np.float32); cols = rng.standard_normal((K,n*P),dtype=np.float32)
    y2 = np.empty((F,n*P),np.float32); y = np.empty((n,F,P),np.float32)
    def big(): np.matmul(W, cols, out=y2); y[...] = y2.reshape(F,n,P).transpose(1,0,2)
    def big_only(): np.matmul(W, cols, out=y2)
    c3 = cols.reshape(K,n,P).transpose(1,0,2)
    def stacked(): np.matmul(W, c3, out=y)
    def loop():
        for i in range(n): np.matmul(W, cols[:, i*P:(i+1)*P], out=y[i])
    print(F,K,n,P, "big+T %.1f big %.1f stacked %.1f loop %.1f us" % (t(big), t(big_only), t(stacked), t(loop)))
