import time, numpy as np
from concurrent.futures import ThreadPoolExecutor
from threadpoolctl import threadpool_limits
threadpool_limits(1)
rng=np.random.default_rng(0)
V=[rng.standard_normal((16,128,64),dtype=np.float32) for _ in range(2)]
U=rng.standard_normal((16,64,64),dtype=np.float32)
M=[np.empty((16,128,64),np.float32) for _ in range(2)]
def job(i, reps):
    for _ in range(reps): np.matmul(V[i],U,out=M[i])
def job2d(i, reps):
    for _ in range(reps):
        for k in range(16): np.matmul(V[i][k],U[k],out=M[i][k])
for name, fn in [("stacked", job), ("2-D loop", job2d)]:
    fn(0,5); R=400
    s=time.perf_counter(); fn(0,R); fn(1,R); one=time.perf_counter()-s
    pool=ThreadPoolExecutor(2)
    s=time.perf_counter(); fs=[pool.submit(fn,i,R) for i in range(2)]; [f.result() for f in fs]; two=time.perf_counter()-s
    print(f"{name}: sequential {one*1e3:.0f} ms, two threads {two*1e3:.0f} ms, speedup {one/two:.2f}")
