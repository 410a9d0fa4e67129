import time, numpy as np
import kernels.numba_cpu  # noqa: F401  (picks Numba's threading layer first)
import numba
from kernels.numba_cpu import batchnorm as B, relu as R
x=np.random.rand(128,16,32,32).astype(np.float32)
g=np.ones(16,np.float32); b=np.zeros(16,np.float32)
import inspect
print(inspect.signature(B.batch_norm_train_forward))
def t(f, reps=20):
    f(); ts=[]
    for _ in range(reps):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return np.median(ts)*1e3
for th in [1,2,1,2]:
    numba.set_num_threads(th)
    print(th, numba.threading_layer(), f"relu fwd {t(lambda: R.relu_forward(x)):.2f} ms")
x3=x.reshape(128,16,1024)
for th in [1,2,1,2]:
    numba.set_num_threads(th)
    print(th, f"bn fwd {t(lambda: B.batch_norm_train_forward(x3,g,b,1e-5)):.2f} ms")
