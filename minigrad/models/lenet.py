"""LeNet-5 for MNIST (LeCun et al. 1998), with the modern choices ReLU and max pooling.

    x      (N, 1, 28, 28)
    conv1  5x5, 6 filters, padding 2    -> (N, 6, 28, 28)   (padding 2 stands in for the
    pool   2x2                          -> (N, 6, 14, 14)    original 32x32 input)
    conv2  5x5, 16 filters              -> (N, 16, 10, 10)
    pool   2x2                          -> (N, 16, 5, 5)
    flatten                             -> (N, 400)
    fc1 -> 120, fc2 -> 84, fc3 -> num_classes

61,706 parameters for 10 classes.
"""
from minigrad import nn


class LeNet5(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"LeNet5: expected input of shape (N, 1, 28, 28), got {tuple(x.shape)}")
        return self.classifier(self.features(x))   # (N, num_classes)
