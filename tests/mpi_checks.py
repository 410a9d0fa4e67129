"""Checks that run inside `mpiexec -n 2` (tests/test_distributed.py starts them): python mpi_checks.py NAME.

Each check asserts on every rank; a failing assert aborts the job through minigrad.distributed's
exception hook, so mpiexec exits non-zero and the test shows the rank's traceback.
"""
import sys

import numpy

import minigrad
import minigrad.distributed as dist
from minigrad import nn


def mlp(seed):
    minigrad.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)).double()


def batch(n=8, seed=1):
    rng = numpy.random.default_rng(seed)
    return minigrad.tensor(rng.standard_normal((n, 6))), minigrad.tensor(rng.integers(0, 3, n))


def my_part(x, rank, world):
    b = len(x) // world
    return x[rank * b:(rank + 1) * b]


def reference_gradients(model, x, y):
    """One process, the whole batch."""
    model.zero_grad()
    minigrad.nn.functional.cross_entropy(model(x), y).backward()
    return [p.grad.numpy().copy() for p in model.parameters()]


def check_gradients_equal_the_big_batch():
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = batch()
    reference = mlp(seed=0)
    expected = reference_gradients(reference, x, y)
    for cap in (1e-5, 1e-4, 25):                        # one bucket per parameter ... one bucket for all
        model = mlp(seed=100 + rank)                    # different weights: DDP must send rank 0's
        if rank == 0:
            model.load_state_dict(reference.state_dict())
        ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=cap)
        assert len(ddp._buckets) == (6 if cap == 1e-5 else 1 if cap == 25 else len(ddp._buckets))
        loss = minigrad.nn.functional.cross_entropy(ddp(my_part(x, rank, world)), my_part(y, rank, world))
        loss.backward()
        for p, g in zip(model.parameters(), expected):
            numpy.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-12, atol=1e-14)


def check_steps_match_one_process():
    rank, world = dist.get_rank(), dist.get_world_size()
    reference, model = mlp(0), mlp(0)
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=1e-4)
    opt_ref = minigrad.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    opt = minigrad.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    for step in range(4):
        x, y = batch(seed=step)
        opt_ref.zero_grad()
        minigrad.nn.functional.cross_entropy(reference(x), y).backward()
        opt_ref.step()
        opt.zero_grad()
        minigrad.nn.functional.cross_entropy(ddp(my_part(x, rank, world)), my_part(y, rank, world)).backward()
        opt.step()
    for a, b in zip(reference.parameters(), model.parameters()):
        numpy.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-12, atol=1e-13)


def check_no_sync_accumulates_then_averages():
    rank, world = dist.get_rank(), dist.get_world_size()
    reference, model = mlp(0), mlp(0)
    (x1, y1), (x2, y2) = batch(seed=1), batch(seed=2)
    reference.zero_grad()
    for x, y in ((x1, y1), (x2, y2)):
        minigrad.nn.functional.cross_entropy(reference(x), y).backward()
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=1e-4)
    with ddp.no_sync():
        minigrad.nn.functional.cross_entropy(ddp(my_part(x1, rank, world)), my_part(y1, rank, world)).backward()
    local = [p.grad.numpy().copy() for p in model.parameters()]
    minigrad.nn.functional.cross_entropy(ddp(my_part(x2, rank, world)), my_part(y2, rank, world)).backward()
    for p, r, l in zip(model.parameters(), reference.parameters(), local):
        numpy.testing.assert_allclose(p.grad.numpy(), r.grad.numpy(), rtol=1e-12, atol=1e-14)
    everyone = dist.ProcessGroup.all_gather_object(dist._require(), float(local[0].sum()))
    assert everyone[0] != everyone[1]                   # inside no_sync the ranks' gradients differed


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.used, self.unused = nn.Linear(6, 4), nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x):
        return self.used(self.body(x))


def check_unused_parameters():
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = batch()
    ddp = nn.parallel.DistributedDataParallel(TwoHeads().double(), bucket_cap_mb=1e-4)
    loss = minigrad.nn.functional.cross_entropy(ddp(my_part(x, rank, world)), my_part(y, rank, world))
    try:
        loss.backward()
    except RuntimeError as error:
        assert "unused.weight" in str(error) and "find_unused_parameters=True" in str(error), error
    else:
        raise AssertionError("an unused parameter went unnoticed")
    model = TwoHeads().double()
    ddp = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    minigrad.nn.functional.cross_entropy(ddp(my_part(x, rank, world)), my_part(y, rank, world)).backward()
    assert (model.unused.weight.grad.numpy() == 0).all() and model.body.weight.grad is not None


def check_different_models_are_named_not_hung():
    rank = dist.get_rank()
    model = nn.Linear(4, 3 if rank == 0 else 2)
    try:
        nn.parallel.DistributedDataParallel(model)
    except ValueError as error:
        assert "different models" in str(error) and "weight" in str(error), error
    else:
        raise AssertionError("a mismatch between the ranks' models went unnoticed")


def check_collectives():
    rank, world = dist.get_rank(), dist.get_world_size()
    x = minigrad.tensor([1.0, 2.0]) * (rank + 1)
    dist.all_reduce(x)
    assert x.tolist() == [3.0, 6.0]
    m = numpy.array([float(rank)])
    dist.all_reduce(m, op="max")
    assert m[0] == world - 1
    a = numpy.array([rank + 1.0, 0.0])
    dist.all_reduce(a, op=dist.ReduceOp.MEAN)
    assert a.tolist() == [1.5, 0.0]
    b = numpy.full(3, float(rank))
    dist.broadcast(b, src=1)
    assert b.tolist() == [1.0, 1.0, 1.0]
    out = [minigrad.zeros(2) for _ in range(world)]
    dist.all_gather(out, minigrad.tensor([rank, rank + 10.0]))
    assert [t.tolist() for t in out] == [[0.0, 10.0], [1.0, 11.0]]
    try:
        dist.all_reduce(numpy.zeros((3, 4))[:, 1])
    except ValueError as error:
        assert "C-contiguous" in str(error)
    else:
        raise AssertionError("a strided array was sent")


def check_a_raising_rank_aborts_the_job():
    if dist.get_rank() == 1:
        raise RuntimeError("rank 1 fails on purpose")
    dist.barrier()                                      # rank 0 would wait here forever without the abort
    print("rank 0 got past the barrier", flush=True)



# ------------------------------------------------------------------ SyncBatchNorm
def with_random_batch_norms(model, seed):
    """gamma and beta away from 1 and 0, so that a gradient of the wrong size would show."""
    rng = numpy.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm)):
            module.weight.array[...] = rng.uniform(0.5, 1.5, module.num_features)
            module.bias.array[...] = rng.standard_normal(module.num_features)
    return model


def conv_bn_net(seed):
    minigrad.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    return with_random_batch_norms(model.double(), seed)


def images(n=8, seed=1, size=6):
    rng = numpy.random.default_rng(seed)
    return (minigrad.tensor(rng.standard_normal((n, 3, size, size)) * 2 + 0.5),
            minigrad.tensor(rng.integers(0, 3, n)))


def assert_sync_step_equals_one_process(reference, ddp, model, x, y, rtol=1e-12, atol=1e-13):
    """Forward and backward of `reference` on the whole batch and of `ddp` (wrapping `model`) on this rank's
    part: the same loss (the ranks' mean), the same gradients, the same running statistics."""
    rank, world = dist.get_rank(), dist.get_world_size()
    reference.zero_grad()
    loss_reference = minigrad.nn.functional.cross_entropy(reference(x), y)
    loss_reference.backward()
    model.zero_grad()
    loss = minigrad.nn.functional.cross_entropy(ddp(my_part(x, rank, world)), my_part(y, rank, world))
    loss.backward()
    mean_loss = numpy.array([loss.item()])
    dist.all_reduce(mean_loss, op="mean")
    numpy.testing.assert_allclose(mean_loss[0], loss_reference.item(), rtol=rtol)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        numpy.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    for (name, b), c in zip(model.named_buffers(), reference.buffers()):
        numpy.testing.assert_allclose(b.numpy(), c.numpy(), rtol=rtol, atol=atol, err_msg=name)


def check_sync_batchnorm_matches_one_process():
    """2 ranks x 4 examples with SyncBatchNorm + DDP == 1 process x 8 examples with BatchNorm, step by step."""
    reference, model = conv_bn_net(0), nn.SyncBatchNorm.convert_sync_batchnorm(conv_bn_net(0))
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in model.modules()) == 3
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=1e-4)
    opt_reference = minigrad.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    opt = minigrad.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    for step in range(3):
        x, y = images(seed=10 + step)
        assert_sync_step_equals_one_process(reference, ddp, model, x, y)
        opt_reference.step()
        opt.step()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        numpy.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12, atol=1e-13, err_msg=name)
    model.eval()
    reference.eval()
    x, _ = images(seed=20)
    numpy.testing.assert_allclose(model(x).detach().numpy(), reference(x).detach().numpy(), rtol=1e-12, atol=1e-13)


def check_sync_batchnorm_resnet_matches_one_process():
    """resnet20 (19 batch norms, most fused with a ReLU): one step's gradients and running statistics."""
    from minigrad.models import resnet20
    minigrad.manual_seed(0)
    reference = with_random_batch_norms(resnet20(num_classes=3).double(), seed=1)
    minigrad.manual_seed(0)
    model = with_random_batch_norms(resnet20(num_classes=3).double(), seed=1)
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model, process_group=dist._require())
    ddp = nn.parallel.DistributedDataParallel(model)
    assert_sync_step_equals_one_process(reference, ddp, model, *images(seed=3, size=8))


def check_sync_batchnorm_uneven_parts():
    """Rank 0 holds 3 examples, rank 1 holds 5: the statistics are still those of all 8. With the loss a
    sum, each rank's dx is the big batch's for its rows, and the ranks' dgamma, dbeta add up to it."""
    rank = dist.get_rank()
    rng = numpy.random.default_rng(4)
    x, g = rng.standard_normal((8, 3, 2, 2)) * 2 + 1, rng.standard_normal((8, 3, 2, 2))
    rows = slice(0, 3) if rank == 0 else slice(3, 8)
    reference = with_random_batch_norms(nn.BatchNorm2d(3).double(), seed=5)
    layer = with_random_batch_norms(nn.SyncBatchNorm(3).double(), seed=5)
    x_all, x_mine = minigrad.tensor(x, requires_grad=True), minigrad.tensor(x[rows], requires_grad=True)
    y_all, y_mine = reference(x_all), layer(x_mine)
    (y_all * minigrad.tensor(g)).sum().backward()
    (y_mine * minigrad.tensor(g[rows])).sum().backward()
    numpy.testing.assert_allclose(y_mine.detach().numpy(), y_all.detach().numpy()[rows], rtol=1e-12, atol=1e-13)
    numpy.testing.assert_allclose(x_mine.grad.numpy(), x_all.grad.numpy()[rows], rtol=1e-12, atol=1e-13)
    for p, q in zip(layer.parameters(), reference.parameters()):
        shares = p.grad.numpy().copy()
        dist.all_reduce(shares)
        numpy.testing.assert_allclose(shares, q.grad.numpy(), rtol=1e-12, atol=1e-13)
    for b, c in zip(layer.buffers(), reference.buffers()):
        numpy.testing.assert_allclose(b.numpy(), c.numpy(), rtol=1e-12)


def check_two_models_backward_separately():
    """A GAN's step: D's backward on G's detached output must not end G's averaging, nor trip it."""
    rank, world = dist.get_rank(), dist.get_world_size()
    x, _ = batch()
    g_ref, d_ref = mlp(0), nn.Sequential(nn.Linear(3, 1)).double()
    g_model, d_model = mlp(0), nn.Sequential(nn.Linear(3, 1)).double()
    d_model.load_state_dict(d_ref.state_dict())
    g = nn.parallel.DistributedDataParallel(g_model, bucket_cap_mb=1e-4)
    d = nn.parallel.DistributedDataParallel(d_model, bucket_cap_mb=1e-4)
    fake = g(my_part(x, rank, world))
    d(fake.detach()).mean().backward()                  # reaches D only
    d(fake).mean().backward()                           # reaches D and G
    fake_ref = g_ref(x)
    d_ref(fake_ref.detach()).mean().backward()
    d_ref(fake_ref).mean().backward()
    for ours, theirs in zip(list(g_model.parameters()) + list(d_model.parameters()),
                            list(g_ref.parameters()) + list(d_ref.parameters())):
        numpy.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-14)


def check_a_caught_error_in_backward_leaves_ddp_working():
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = batch()
    reference, model = mlp(0), mlp(0)
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=1e-4)
    out = ddp(my_part(x, rank, world))

    def fail(grad):
        raise ValueError("a hook fails on purpose")

    out.register_hook(fail)
    try:
        minigrad.nn.functional.cross_entropy(out, my_part(y, rank, world)).backward()
    except ValueError:
        pass
    model.zero_grad()
    expected = reference_gradients(reference, x, y)
    minigrad.nn.functional.cross_entropy(ddp(my_part(x, rank, world)), my_part(y, rank, world)).backward()
    for p, g in zip(model.parameters(), expected):
        numpy.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-12, atol=1e-14)


def check_nccl_collectives():
    """GPU arrays through NCCL (the GPU suite starts this with one rank per device)."""
    import cupy
    rank, world = dist.get_rank(), dist.get_world_size()
    x = cupy.full(4, rank + 1.0)
    dist.all_reduce(x)
    assert float(x[0]) == world * (world + 1) / 2
    y = cupy.full(3, float(rank))
    dist.all_reduce(y, op="mean")
    assert abs(float(y[0]) - (world - 1) / 2) < 1e-12
    b = cupy.full(2, float(rank))
    dist.broadcast(b, src=world - 1)
    assert float(b[1]) == world - 1
    gathered = dist._require().all_gather(cupy.array([float(rank)]))
    assert gathered.ravel().tolist() == [float(r) for r in range(world)]


def check_nccl_ddp_matches_one_process():
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = batch()
    x, y = x.to("gpu"), y.to("gpu")
    reference = mlp(0).to("gpu")
    expected = reference_gradients(reference, x, y)
    model = mlp(0).to("gpu")
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=1e-4)
    minigrad.nn.functional.cross_entropy(ddp(my_part(x, rank, world)), my_part(y, rank, world)).backward()
    for p, g in zip(model.parameters(), expected):
        numpy.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-12, atol=1e-14)


if __name__ == "__main__":
    dist.init_process_group("nccl" if any(name.startswith("nccl") for name in sys.argv[1:]) else "mpi")
    for name in sys.argv[1:]:
        globals()[f"check_{name}"]()
        dist.barrier()
    if dist.get_rank() == 0:
        print("ok:", " ".join(sys.argv[1:]), flush=True)
    dist.destroy_process_group()
