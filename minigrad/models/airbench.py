"""The network of the CIFAR-10 speed records: 94% test accuracy in a few seconds of GPU time.

Keller Jordan, "94% on CIFAR-10 in ... Seconds on a Single GPU" (2024, arXiv:2404.00498; the
title's timing is left out, as library code quotes no measurements), and the repository
github.com/KellerJordan/cifar10-airbench (airbench94.py; airbench94_muon.py trains the same net
with Muon, minigrad/optim/muon.py). Written here from minigrad's layers.

    x        (N, 3, 32, 32)   normalised images
    whiten   2x2 conv, 24 filters, no padding, FROZEN   -> (N, 24, 31, 31)   then GELU
    group 1  widths[0]                                  -> (N, 64, 15, 15)
    group 2  widths[1]                                  -> (N, 256, 7, 7)
    group 3  widths[2]                                  -> (N, 256, 3, 3)
    pool     3x3 max                                    -> (N, 256, 1, 1)    flatten -> (N, 256)
    head     linear, no bias, times head_scale          -> (N, 10)

    a conv group:  conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU

What makes it train so fast (with about 2M parameters and no residual connections):
  - the first layer is not learned: it whitens 2x2 patches (patch_whitening_weights below);
  - every 3x3 conv starts as the identity on its first c_in output channels (dirac
    initialisation), so the deep plain stack starts close to a shallow one;
  - batch norm with its scale gamma frozen at 1 (only the shift beta learns) and a low
    statistics momentum (0.4 as PyTorch counts it; airbench writes 0.6 = 1 - 0.4);
  - small logits: the head's output is multiplied by 1/9 (see AirbenchNet).
"""
import numpy
from numpy.lib.stride_tricks import sliding_window_view

from minigrad import nn
from minigrad.creation import zeros


def patch_whitening_weights(images, patch_size=2, eps=5e-4, max_images=5000, chunk=256):
    """Conv weights (2 D, C, p, p), D = C p p, that whiten the p x p patches of `images` (N, C, H, W).

    Why whiten: the gradient of a linear layer y = w . x is x dL/dy, and how fast gradient descent
    makes progress is set by the condition number of Cov(x). Neighbouring pixels and the three
    colour channels are strongly correlated, so a few patch directions carry nearly all of the
    variance and the rest are tiny. Decorrelated inputs of unit variance give the first learned
    layer a well-conditioned problem: every direction learns at the same rate.

    The maths: with x a flattened patch (D numbers), C = Cov(x) = E Lambda E^T (numpy.linalg.eigh:
    E orthonormal columns, Lambda the eigenvalues), take the filters W = Lambda^{-1/2} E^T. Then

        Cov(W x) = W C W^T = Lambda^{-1/2} E^T (E Lambda E^T) E Lambda^{-1/2} = I.

    With eps, W = (Lambda + eps)^{-1/2} E^T and Cov(W x) = Lambda / (Lambda + eps): directions of
    variance far below eps (pixel noise) are shrunk rather than blown up to unit variance.
    The filters come twice, W and -W, so that the GELU after them keeps both signs of each feature.
    (airbench uses the uncentred E[x x^T]; on normalised images the mean is near 0 and the two agree.)

    The first `max_images` images (spread evenly over the set when it has more) are used; the
    covariance is summed `chunk` images at a time so that the patches never sit in memory at once.
    """
    images = numpy.asarray(images)
    if images.ndim != 4 or images.shape[2] < patch_size or images.shape[3] < patch_size:
        raise ValueError(f"patch_whitening_weights: expected images (N, C, H, W) with H, W >= patch_size="
                         f"{patch_size}, got shape {images.shape}")
    if len(images) > max_images:                                  # a deterministic, even subset
        images = images[numpy.linspace(0, len(images) - 1, max_images).astype(int)]
    c, p = images.shape[1], patch_size
    d = c * p * p
    total, outer, count = numpy.zeros(d), numpy.zeros((d, d)), 0
    for start in range(0, len(images), chunk):
        windows = sliding_window_view(images[start:start + chunk], (p, p), axis=(2, 3))  # (n, C, OH, OW, p, p)
        x = windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, d).astype(numpy.float64)  # (n OH OW, D), conv order
        total, outer, count = total + x.sum(0), outer + x.T @ x, count + len(x)
    mean = total / count
    covariance = outer / count - numpy.outer(mean, mean)          # (D, D)  E[x x^T] - mu mu^T
    eigenvalues, eigenvectors = numpy.linalg.eigh(covariance)     # ascending; columns are eigenvectors
    order = numpy.argsort(eigenvalues)[::-1]                      # largest variance first
    eigenvalues, eigenvectors = numpy.clip(eigenvalues[order], 0, None), eigenvectors[:, order]
    if eigenvalues[-1] + eps <= 0:
        raise ValueError("patch_whitening_weights: some patch direction has no variance (constant images?), "
                         "so eps=0 would divide by zero; use eps > 0")
    filters = eigenvectors.T / numpy.sqrt(eigenvalues + eps)[:, None]   # (D, D)  rows = (Lambda+eps)^-1/2 E^T
    filters = filters.reshape(d, c, p, p)                         # (D, C, p, p)
    return numpy.concatenate([filters, -filters]).astype(numpy.float32)   # (2 D, C, p, p)


def dirac_first_filters_(weight):
    """Make output filter d the identity on input channel d for d < min(F, C); leave the others as
    they are (the layer's default init). A conv starting so passes its first channels through."""
    k = min(weight.shape[0], weight.shape[1])
    identity = nn.init.dirac_(zeros(k, *weight.shape[1:], dtype=weight.dtype))   # (k, C, KH, KW)
    weight.array[:k] = identity.array                            # the model is built on the CPU


def speedrun_batch_norm(channels, momentum, eps):
    """BatchNorm2d with gamma frozen at 1: only the shift beta is learned."""
    norm = nn.BatchNorm2d(channels, eps=eps, momentum=momentum)
    norm.weight.requires_grad_(False)
    return norm


class ConvGroup(nn.Module):
    """conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU: halves H and W (floor)."""

    def __init__(self, in_channels, out_channels, batchnorm_momentum, batchnorm_eps, dirac=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = speedrun_batch_norm(out_channels, batchnorm_momentum, batchnorm_eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = speedrun_batch_norm(out_channels, batchnorm_momentum, batchnorm_eps)
        self.activation = nn.GELU()
        if dirac:                                                 # dirac=False: the default init (an ablation)
            dirac_first_filters_(self.conv1.weight)
            dirac_first_filters_(self.conv2.weight)

    def forward(self, x):                                         # x (N, C_in, H, W)
        x = self.activation(self.norm1(self.pool(self.conv1(x))))  # (N, C_out, H/2, W/2)
        return self.activation(self.norm2(self.conv2(x)))       # (N, C_out, H/2, W/2)


class AirbenchNet(nn.Module):
    """The airbench94 network. Call `init_whitening(train_images)` once before training.

    head_scale: airbench94 multiplies the logits by 1/9, with the head keeping Linear's default init
    U(-1/sqrt(256), 1/sqrt(256)) (std 1/sqrt(3 * 256) = 0.036), so the weights' effective scale is
    0.004 and the first logits are close to 0: the softmax starts near uniform and the
    head's large learning rate does not blow it up.
    head_weight_std: None keeps Linear's init; a number rescales the head weight to that std.
    airbench94_muon uses head_weight_std=1 and head_scale=1/256: the same effective 0.004 at the
    start, but SGD's step on the weight (lr * head_scale * dL/dlogits ...) then moves the logits by
    lr * head_scale^2 per unit of gradient, about 800 times less than with 1/9. Its head lr 0.67
    was tuned for that convention (and a loss summed over the batch).
    batchnorm_momentum: as in PyTorch and minigrad, the weight of the new batch's statistics.
    dirac: start each 3x3 conv as the identity on its first channels (False keeps the default init).
    """

    def __init__(self, widths=(64, 256, 256), num_classes=10, batchnorm_momentum=0.4, batchnorm_eps=1e-12,
                 head_scale=1 / 9, head_weight_std=None, dirac=True):
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"AirbenchNet: widths must be three channel counts (one per conv group), got {widths!r}")
        whiten_width = 2 * 3 * 2 * 2                              # +-(one filter per 2x2x3 patch direction)
        self.whiten = nn.Conv2d(3, whiten_width, kernel_size=2, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)                  # set by init_whitening, never trained
        self.activation = nn.GELU()
        self.group1 = ConvGroup(whiten_width, widths[0], batchnorm_momentum, batchnorm_eps, dirac)
        self.group2 = ConvGroup(widths[0], widths[1], batchnorm_momentum, batchnorm_eps, dirac)
        self.group3 = ConvGroup(widths[1], widths[2], batchnorm_momentum, batchnorm_eps, dirac)
        self.pool = nn.MaxPool2d(3)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(widths[2], num_classes, bias=False)
        self.head_scale = head_scale
        if head_weight_std is not None:
            weight = self.head.weight.array
            weight *= head_weight_std / weight.std()

    def init_whitening(self, images, eps=5e-4):
        """Set the frozen whitening filters from training images (N, 3, H, W), already normalised."""
        weights = patch_whitening_weights(images, patch_size=2, eps=eps)
        self.whiten.weight.array[...] = weights.astype(self.whiten.weight.dtype)

    @property
    def whitening_bias(self):
        """The whitening layer's (trainable) bias; airbench trains it for the first epochs only."""
        return self.whiten.bias

    def muon_parameters(self):
        """The trainable convolution filters (4-D): the parameters for optim.Muon."""
        return [p for p in self.parameters() if p.requires_grad and p.ndim == 4]

    def other_parameters(self):
        """Every other trainable parameter (whitening bias, BN shifts, head): for SGD."""
        return [p for p in self.parameters() if p.requires_grad and p.ndim != 4]

    def forward(self, images, whiten_bias_grad=True):             # images (N, 3, 32, 32)
        """whiten_bias_grad=False: the whitening bias takes part but gets no gradient (airbench
        stops training it after a few epochs)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"AirbenchNet: expected images of shape (N, 3, 32, 32), got {tuple(images.shape)}")
        bias = self.whiten.bias if whiten_bias_grad else self.whiten.bias.detach()
        x = self.activation(nn.functional.conv2d(images, self.whiten.weight, bias))  # (N, 24, 31, 31)
        x = self.group3(self.group2(self.group1(x)))             # (N, widths[2], 3, 3)
        x = self.pool(x)                                          # (N, widths[2], 1, 1)
        if x.shape[2:] != (1, 1):
            raise ValueError(f"AirbenchNet: made for 32x32 images (the final pool must leave a 1x1 map), "
                             f"but images of shape {tuple(images.shape)} leave {tuple(x.shape[2:])}")
        return self.head(self.flatten(x)) * self.head_scale      # (N, num_classes)
