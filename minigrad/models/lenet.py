"""LeNet-5 for MNIST (LeCun et al. 1998), with the modern choices ReLU and max pooling.

    x      (N, 1, 28, 28)
    conv1  5x5, C1 filters, padding 2   -> (N, C1, 28, 28)  (padding 2 stands in for the
    pool   2x2                          -> (N, C1, 14, 14)   original 32x32 input)
    conv2  5x5, C2 filters              -> (N, C2, 10, 10)
    pool   2x2                          -> (N, C2, 5, 5)
    flatten                             -> (N, C2 * 25)
    fc1 -> H1, fc2 -> H2, fc3 -> num_classes

The classic sizes are C1, C2 = 6, 16 and H1, H2 = 120, 84: 61,706 parameters for
10 classes. `channels`, `hidden`, `batch_norm` (BatchNorm2d after each conv) and
`dropout` (before each hidden linear layer) make the same shape wider and easier
to train: examples/mnist_cnn.py uses channels (32, 64), hidden (256,), batch norm.
"""
from minigrad import nn


class LeNet5(nn.Module):
    def __init__(self, num_classes=10, channels=(6, 16), hidden=(120, 84), batch_norm=False, dropout=0.0):
        super().__init__()
        c1, c2 = channels

        def conv_block(in_channels, out_channels, padding):
            norm = [nn.BatchNorm2d(out_channels)] if batch_norm else []
            return [nn.Conv2d(in_channels, out_channels, kernel_size=5, padding=padding, bias=not batch_norm),
                    *norm, nn.ReLU(), nn.MaxPool2d(2)]

        self.features = nn.Sequential(*conv_block(1, c1, padding=2), *conv_block(c1, c2, padding=0))
        layers, width = [nn.Flatten()], c2 * 5 * 5
        for size in hidden:
            if dropout:
                layers.append(nn.Dropout(dropout))
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"LeNet5: expected input of shape (N, 1, 28, 28), got {tuple(x.shape)}")
        return self.classifier(self.features(x))   # (N, num_classes)
