"""Chapter 5: gradient norms per layer at initialisation, plain vs residual, 56 layers deep.

    python docs/figures/resnet_gradients.py            # prints a table, writes resnet_gradients.png

Both networks are minigrad.models.resnet56 (3 stages of 9 BasicBlocks, 16-32-64
channels, batch norm in training mode). The plain one is the same network with
every block's shortcut removed, y = relu(F(x)) instead of y = relu(F(x) + x),
and the same initialisation. For one batch of random images and random labels
we run forward, cross-entropy, backward, and print ||dL/dW|| for every block's
first convolution, from the input side (block 1) to the output side (block 27).
The numbers are averaged over a few random seeds.
"""
import argparse

import numpy

from common import plt, save

import minigrad  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad.models import resnet56  # noqa: E402
from minigrad.models.resnet import BasicBlock, init_resnet_weights  # noqa: E402
from minigrad.ops.activation import relu  # noqa: E402


class PlainBlock(BasicBlock):
    """A BasicBlock without its shortcut: y = relu(bn2(conv2(relu(bn1(conv1(x))))))."""

    def forward(self, x):                              # x (N, C_in, H, W)
        out = relu(self.bn1(self.conv1(x)))            # (N, C, H/s, W/s)
        return relu(self.bn2(self.conv2(out)))         # (N, C, H/s, W/s): no "+ shortcut(x)"


def plain_resnet56():
    """resnet56 with every BasicBlock swapped for a PlainBlock of the same widths and stride."""
    model = resnet56()
    for stage in (model.layer1, model.layer2, model.layer3):
        for index, block in enumerate(stage):
            conv = block.conv1
            stage[index] = PlainBlock(conv.in_channels, conv.out_channels, conv.stride[0])
    init_resnet_weights(model)                         # the same initialisation as resnet56
    return model


def block_gradient_norms(model, images, labels):
    """||dL/dW|| of conv1 in every block, input side first."""
    model.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    blocks = [block for stage in (model.layer1, model.layer2, model.layer3) for block in stage]
    return numpy.array([float(numpy.linalg.norm(block.conv1.weight.grad.array)) for block in blocks])


def measure(seeds, batch):
    norms = {"residual (resnet56)": [], "plain (no shortcuts)": []}
    for seed in range(seeds):
        for name, build in (("residual (resnet56)", resnet56), ("plain (no shortcuts)", plain_resnet56)):
            minigrad.manual_seed(seed)
            model = build()
            model.train()
            rng = numpy.random.default_rng(seed)
            images = minigrad.tensor(rng.standard_normal((batch, 3, 32, 32)).astype(numpy.float32))
            labels = minigrad.tensor(rng.integers(0, 10, size=batch))
            norms[name].append(block_gradient_norms(model, images, labels))
    return {name: numpy.mean(values, axis=0) for name, values in norms.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    norms = measure(args.seeds, args.batch)

    print(f"||dL/dW|| of each block's first conv at initialisation (mean of {args.seeds} seeds, batch {args.batch})")
    print("block " + "".join(f"{name:>24}" for name in norms))
    for index in range(len(next(iter(norms.values())))):
        print(f"{index + 1:5d} " + "".join(f"{values[index]:24.3e}" for values in norms.values()))
    for name, values in norms.items():
        print(f"{name}: first block / last block = {values[0] / values[-1]:.3g}, "
              f"max / min over blocks = {values.max() / values.min():.3g}")

    figure, axes = plt.subplots(figsize=(7, 3.6))
    for (name, values), marker in zip(norms.items(), ("o", "s")):
        axes.semilogy(numpy.arange(1, len(values) + 1), values, marker=marker, markersize=4, label=name)
    for boundary in (9.5, 18.5):
        axes.axvline(boundary, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xlabel("block (1 = next to the input, 27 = next to the output)")
    axes.set_ylabel("||dL/dW|| of the block's first conv")
    axes.set_title("Gradient norms at initialisation, 56 layers")
    axes.legend()
    save(figure, "resnet_gradients.png")


if __name__ == "__main__":
    main()
