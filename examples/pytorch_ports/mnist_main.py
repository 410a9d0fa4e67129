"""The canonical PyTorch MNIST example, as minigrad runs it: a two-conv network, Adadelta, StepLR.

A port of the MNIST script in github.com/pytorch/examples (mnist/main.py, BSD-3-Clause), written
here with its arguments, network, loops and every PyTorch call it makes. The only lines that differ from what PyTorch runs
end in a "port:" comment that quotes the PyTorch line; benchmarks/ports.py swaps those back and
runs this same file on PyTorch to compare.

    cd some/folder && python /path/to/examples/pytorch_ports/mnist_main.py --epochs 1    # data in ../data
"""
import argparse

import minigrad as torch                                      # port: `import torch`
import minigrad.nn as nn                                      # port: `import torch.nn as nn`
import minigrad.nn.functional as F                            # port: `import torch.nn.functional as F`
import minigrad.optim as optim                                # port: `import torch.optim as optim`
from minigrad.vision import datasets, transforms              # port: `from torchvision import datasets, transforms`
from minigrad.optim.lr_scheduler import StepLR                # port: `from torch.optim.lr_scheduler import StepLR`


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
            if args.dry_run:
                break


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.2f}%)\n'.format(
        test_loss, correct, len(test_loader.dataset),
        100. * correct / len(test_loader.dataset)))


def main():
    parser = argparse.ArgumentParser(description='MNIST: a small convolutional network')
    parser.add_argument('--batch-size', type=int, default=64, metavar='N', help='training batch size')
    parser.add_argument('--test-batch-size', type=int, default=1000, metavar='N', help='test batch size')
    parser.add_argument('--epochs', type=int, default=14, metavar='N', help='epochs to train')
    parser.add_argument('--lr', type=float, default=1.0, metavar='LR', help='Adadelta learning rate')
    parser.add_argument('--gamma', type=float, default=0.7, metavar='M', help='StepLR decay per epoch')
    parser.add_argument('--no-accel', action='store_true', help='stay on the CPU')
    parser.add_argument('--dry-run', action='store_true', help='one batch per epoch, to check the script')
    parser.add_argument('--seed', type=int, default=1, metavar='S', help='random seed')
    parser.add_argument('--log-interval', type=int, default=10, metavar='N', help='batches between log lines')
    parser.add_argument('--save-model', action='store_true', help='save the weights to mnist_cnn.pt')
    args = parser.parse_args()

    use_accel = not args.no_accel and torch.accelerator.is_available()

    torch.manual_seed(args.seed)

    if use_accel:
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")

    train_kwargs = {'batch_size': args.batch_size}
    test_kwargs = {'batch_size': args.test_batch_size}
    if use_accel:
        accel_kwargs = {'num_workers': 1,
                        'persistent_workers': True,
                        'pin_memory': True,
                        'shuffle': True}
        train_kwargs.update(accel_kwargs)
        test_kwargs.update(accel_kwargs)
    else:
        train_kwargs.update({'shuffle': True})

    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.1307,), (0.3081,))
    ])
    dataset1 = datasets.MNIST('../data', train=True, download=True,
                              transform=transform)
    dataset2 = datasets.MNIST('../data', train=False,
                              transform=transform)
    train_loader = torch.utils.data.DataLoader(dataset1, **train_kwargs)
    test_loader = torch.utils.data.DataLoader(dataset2, **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)

    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        test(model, device, test_loader)
        scheduler.step()

    if args.save_model:
        torch.save(model.state_dict(), "mnist_cnn.pt")


if __name__ == '__main__':
    main()
