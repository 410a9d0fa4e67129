"""`torchvision.models` at minigrad's path: the ImageNet-layout ResNets of minigrad/models/.

`weights=` is torchvision's way to ask for pretrained weights, which minigrad cannot fetch (it has
no model zoo); weights=None builds the network with fresh weights, and a state_dict saved from
torchvision loads into it (minigrad.models.torchvision_resnet maps the names).
"""
from minigrad.models.torchvision_resnet import torchvision_resnet18, torchvision_resnet34


def _no_pretrained(name, weights, pretrained):
    if weights is not None or pretrained:
        raise ValueError(
            f"{name}: minigrad has no pretrained weights to download (weights={weights!r}); build it with "
            f"weights=None and load a state_dict you saved, e.g. model.load_state_dict(minigrad.load(path))"
        )


def resnet18(weights=None, num_classes=1000, pretrained=False):
    """ResNet-18 as torchvision builds it (7x7 stem, max pool, four stages of BasicBlocks)."""
    _no_pretrained("resnet18", weights, pretrained)
    return torchvision_resnet18(num_classes=num_classes)


def resnet34(weights=None, num_classes=1000, pretrained=False):
    """ResNet-34 as torchvision builds it."""
    _no_pretrained("resnet34", weights, pretrained)
    return torchvision_resnet34(num_classes=num_classes)


__all__ = ["resnet18", "resnet34"]
