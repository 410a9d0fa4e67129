"""A classic small CIFAR-10 script: LeNet-5, augmentation, SGD with momentum, per-epoch test accuracy.

The kind of script a course hands out (and that fills many public repositories): a LeNet in
the style of the ones in pytorch-cifar's models/lenet.py, random crops and flips, SGD with
momentum and weight decay, StepLR, a tqdm-free loop that prints loss and accuracy per epoch.
Written for minigrad's tests; the lines that differ from the PyTorch version end in a "port:"
comment quoting the PyTorch line.

    cd some/folder && python /path/to/examples/pytorch_ports/cifar10_lenet.py --epochs 5   # data in ./data
"""
import argparse
import time

import minigrad as torch                                      # port: `import torch`
import minigrad.nn as nn                                      # port: `import torch.nn as nn`
import minigrad.nn.functional as F                            # port: `import torch.nn.functional as F`
import minigrad.optim as optim                                # port: `import torch.optim as optim`
import minigrad.vision as torchvision                         # port: `import torchvision`
import minigrad.vision.transforms as transforms               # port: `import torchvision.transforms as transforms`


class LeNet(nn.Module):
    def __init__(self):
        super(LeNet, self).__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        out = F.relu(self.conv1(x))
        out = F.max_pool2d(out, 2)
        out = F.relu(self.conv2(out))
        out = F.max_pool2d(out, 2)
        out = out.view(out.size(0), -1)
        out = F.relu(self.fc1(out))
        out = F.relu(self.fc2(out))
        out = self.fc3(out)
        return out


parser = argparse.ArgumentParser(description='LeNet-5 on CIFAR-10')
parser.add_argument('--epochs', default=30, type=int, help='epochs to train')
parser.add_argument('--lr', default=0.01, type=float, help='learning rate')
parser.add_argument('--batch-size', default=64, type=int, help='batch size')
parser.add_argument('--seed', default=0, type=int, help='random seed')
args = parser.parse_args()

torch.manual_seed(args.seed)
device = 'cuda' if torch.cuda.is_available() else 'cpu'

mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
transform_train = transforms.Compose([
    transforms.RandomCrop(32, padding=4),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    transforms.Normalize(mean, std),
])
transform_test = transforms.Compose([
    transforms.ToTensor(),
    transforms.Normalize(mean, std),
])

trainset = torchvision.datasets.CIFAR10(root='./data', train=True, download=True, transform=transform_train)
trainloader = torch.utils.data.DataLoader(trainset, batch_size=args.batch_size, shuffle=True, num_workers=2)
testset = torchvision.datasets.CIFAR10(root='./data', train=False, download=True, transform=transform_test)
testloader = torch.utils.data.DataLoader(testset, batch_size=1000, shuffle=False, num_workers=2)

net = LeNet().to(device)
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=max(1, args.epochs // 3), gamma=0.3)


def train(epoch):
    net.train()
    train_loss, correct, total = 0.0, 0, 0
    for inputs, targets in trainloader:
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        train_loss += loss.item() * targets.size(0)
        _, predicted = outputs.max(1)
        total += targets.size(0)
        correct += predicted.eq(targets).sum().item()
    return train_loss / total, 100. * correct / total


def test():
    net.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for inputs, targets in testloader:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = net(inputs)
            _, predicted = torch.max(outputs.data, 1)
            total += targets.size(0)
            correct += (predicted == targets).sum().item()
    return 100. * correct / total


for epoch in range(args.epochs):
    start = time.time()
    loss, train_acc = train(epoch)
    test_acc = test()
    scheduler.step()
    print('epoch %d  lr %.4f  loss %.3f  train acc %.2f%%  test acc %.2f%%  (%.1f s)'
          % (epoch + 1, optimizer.param_groups[0]['lr'], loss, train_acc, test_acc, time.time() - start))
print('Final test accuracy: %.2f%%' % test_acc)
