"""MLP: a multi-layer perceptron, the first model of the course.

    x (N, ...) -> flatten -> [Linear -> ReLU (-> Dropout)] per hidden size -> Linear -> logits (N, K)

MLP(784, [256, 128], 10) on MNIST has 784*256 + 256 + 256*128 + 128 + 128*10 + 10
= 235,146 parameters. Layers sit in one Sequential, `layers`, so parameter
names are layers.0.weight, layers.0.bias, layers.2.weight, ...
"""
from minigrad import nn


class MLP(nn.Module):
    def __init__(self, in_features, hidden_sizes, num_classes, dropout=0.0):
        super().__init__()
        if isinstance(hidden_sizes, int):
            hidden_sizes = [hidden_sizes]
        layers, width = [nn.Flatten()], in_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)                      # (N, num_classes)
