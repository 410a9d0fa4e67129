"""AdamW: Adam with decoupled weight decay.

Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (2019). In Adam
an L2 penalty is added to the gradient, so it is divided by sqrt(v_hat) like
everything else and weights with large gradients are barely decayed. AdamW
shrinks the weights directly instead, before the Adam step:

    p = p - lr * weight_decay * p
    p = p - lr * m_hat / (sqrt(v_hat) + eps)     (m_hat, v_hat from g, see adam.py)

Everything else (moments, bias correction, amsgrad, maximize) is Adam's, so
this class only changes the defaults: weight_decay=1e-2, decoupled.
"""
from minigrad.optim.adam import Adam


class AdamW(Adam):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)
