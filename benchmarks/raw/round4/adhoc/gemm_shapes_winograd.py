import time, numpy as np
from threadpoolctl import threadpool_limits
threadpool_limits(1)
rng = np.random.default_rng(0)
def t(f, reps=50):
    f(); ts=[]
    for _ in range(reps):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return np.median(ts)
for (F,C,T) in [(64,64,256),(64,64,512),(64,64,2048),(32,32,512),(32,32,1024),(32,32,8192),(16,16,1024),(16,16,4096),(64,32,512)]:
    U=rng.standard_normal((16,F,C),dtype=np.float32); V=rng.standard_normal((16,C,T),dtype=np.float32); M=np.empty((16,F,T),np.float32)
    def fwd():
        for k in range(16): np.matmul(U[k],V[k],out=M[k])
    dM = rng.standard_normal((16,F,T),dtype=np.float32); dV=np.empty((16,C,T),np.float32)
    def dx():
        for k in range(16): np.matmul(U[k].T, dM[k], out=dV[k])
    dU=np.empty((16,C,F),np.float32)
    def dw():
        for k in range(16): np.matmul(V[k], dM[k].T, out=dU[k])
    fl = 16*2*F*C*T
    print(F,C,T, " ".join(f"{n}:{fl/t(f)/1e9:.0f}GF/s" for n,f in [("fwd",fwd),("dx",dx),("dw",dw)]))
