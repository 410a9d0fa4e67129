import time, numpy as np
from threadpoolctl import threadpool_limits, threadpool_info
threadpool_limits(1)
print([ (i['internal_api'], i.get('architecture')) for i in threadpool_info()])
rng = np.random.default_rng(0)
def t(f, reps=30):
    f(); ts=[]
    for _ in range(reps):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return np.median(ts)
for (M,K,N) in [(64,576,448),(64,576,64*128),(576,64,448),(64,576,2048),(32,288,1024),(32,288,256*128), (64, 288, 64*128)]:
    a=rng.standard_normal((M,K),dtype=np.float32); b=rng.standard_normal((K,N),dtype=np.float32); o=np.empty((M,N),np.float32)
    s=t(lambda: np.matmul(a,b,out=o))
    print(f"{M}x{K} @ {K}x{N}: {s*1e3:.3f} ms {2*M*K*N/s/1e9:.0f} GFLOP/s")
    # dW style: (K,N)@(N,M)
    bt = rng.standard_normal((M,N),dtype=np.float32)
    s=t(lambda: b @ bt.T)
    print(f"   dW {K}x{N} @ {N}x{M}: {s*1e3:.3f} ms {2*M*K*N/s/1e9:.0f} GFLOP/s")
    s=t(lambda: a.T @ bt)
    print(f"   dcols {K}x{M} @ {M}x{N}: {s*1e3:.3f} ms {2*M*K*N/s/1e9:.0f} GFLOP/s")
