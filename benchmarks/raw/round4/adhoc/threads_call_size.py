import time, numpy as np
from concurrent.futures import ThreadPoolExecutor
from threadpoolctl import threadpool_limits
threadpool_limits(1)
rng=np.random.default_rng(0)
for T in [128, 512, 2048]:
    V=[rng.standard_normal((T,64),dtype=np.float32) for _ in range(2)]
    U=rng.standard_normal((64,64),dtype=np.float32)
    M=[np.empty((T,64),np.float32) for _ in range(2)]
    def job(i, reps):
        for _ in range(reps): np.matmul(V[i],U,out=M[i])
    job(0,5); R=int(200000/T)
    s=time.perf_counter(); job(0,R); job(1,R); one=time.perf_counter()-s
    pool=ThreadPoolExecutor(2)
    s=time.perf_counter(); fs=[pool.submit(job,i,R) for i in range(2)]; [f.result() for f in fs]; two=time.perf_counter()-s
    print(f"T={T}: per call {one/2/R*1e6:.1f} us, speedup with two threads {one/two:.2f}")
