"""minigrad.vision and the torchvision-style transforms: one image or a batch, datasets with transform=,
Resize / CenterCrop / RandomResizedCrop against PyTorch's interpolation, ImageFolder and make_grid."""
import numpy
import pytest

import minigrad
import minigrad.vision as torchvision
from minigrad.data import ArrayDataset, DataLoader
from minigrad.data.resize import resize_boxes
from minigrad.vision import transforms
from test_data_formats import write_cifar



def _torch():
    return pytest.importorskip("torch")


def _images(n=4, c=3, h=12, w=10, seed=0):
    return numpy.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=numpy.uint8)


# ---------------------------------------------------------------- one image, a batch, a Tensor, a PIL image
def test_to_tensor_turns_one_uint8_image_into_a_float_tensor_in_unit_range():
    image = _images(1)[0]                                           # (3, 12, 10) as minigrad's datasets hold it
    x = transforms.ToTensor()(image)
    assert isinstance(x, minigrad.Tensor) and x.shape == (3, 12, 10) and x.dtype == numpy.float32
    numpy.testing.assert_allclose(x.numpy(), image / 255.0, rtol=1e-6)
    assert x.unsqueeze(0).shape == (1, 3, 12, 10)                  # the tutorial's transform(img).unsqueeze(0)


def test_to_tensor_takes_channels_last_arrays_grey_images_and_pil_images():
    image = _images(1)[0]
    hwc = image.transpose(1, 2, 0)                                  # (12, 10, 3), as torchvision expects
    numpy.testing.assert_array_equal(transforms.ToTensor()(hwc).numpy(), transforms.ToTensor()(image).numpy())
    assert transforms.ToTensor()(image[0]).shape == (1, 12, 10)
    pil = pytest.importorskip("PIL.Image")
    numpy.testing.assert_array_equal(transforms.ToTensor()(pil.fromarray(hwc)).numpy(),
                                     transforms.ToTensor()(image).numpy())


def test_to_tensor_on_a_batch_stays_numpy_and_gains_a_channel_axis():
    out = transforms.ToTensor().batch(_images(5, c=1)[:, 0])        # (5, 12, 10) grey batch
    assert isinstance(out, numpy.ndarray) and out.shape == (5, 1, 12, 10) and out.dtype == numpy.float32


def test_a_composed_transform_on_one_tensor_gives_a_tensor_and_equals_the_batch_path():
    t = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.4, 0.3), (0.2, 0.2, 0.2)),
                            transforms.CenterCrop(8)])
    batch = _images(3)
    one = t(batch[1])
    assert isinstance(one, minigrad.Tensor) and one.shape == (3, 8, 8)
    numpy.testing.assert_allclose(one.numpy(), t.batch(batch)[1], rtol=1e-6)


def test_a_plain_function_in_compose_runs_image_by_image_on_a_batch():
    seen = []
    t = transforms.Compose([transforms.ToTensor(), lambda image: seen.append(image.shape) or image * 2])
    out = t.batch(_images(3))
    assert seen == [(3, 12, 10)] * 3 and out.shape == (3, 3, 12, 10)
    numpy.testing.assert_allclose(out, _images(3) / 255.0 * 2, rtol=1e-6)


# ---------------------------------------------------------------- Resize against torch.nn.functional.interpolate
@pytest.mark.parametrize("size", [(6, 5), (12, 10), (20, 27), (7, 30)])
@pytest.mark.parametrize("antialias", [True, False])
def test_resize_matches_pytorchs_bilinear_interpolation(size, antialias):
    torch = _torch()
    x = numpy.random.default_rng(1).standard_normal((2, 3, 12, 10)).astype(numpy.float32)
    ours = transforms.Resize(size, antialias=antialias).batch(x)
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bilinear",
                                             align_corners=False, antialias=antialias).numpy()
    numpy.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_nearest_resize_matches_pytorch():
    torch = _torch()
    x = numpy.random.default_rng(2).standard_normal((1, 2, 9, 7)).astype(numpy.float32)
    for size in [(4, 3), (18, 14), (9, 11)]:
        ours = transforms.Resize(size, interpolation=transforms.InterpolationMode.NEAREST).batch(x)
        theirs = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="nearest").numpy()
        numpy.testing.assert_array_equal(ours, theirs)


def test_resize_by_the_shorter_side_keeps_the_aspect_ratio_and_the_uint8_dtype():
    image = _images(1, h=20, w=40)[0]
    out = transforms.Resize(10)(image)
    assert out.shape == (3, 10, 20) and out.dtype == numpy.uint8
    assert transforms.Resize(10)(image.transpose(0, 2, 1)).shape == (3, 20, 10)
    assert transforms.Resize(10, max_size=15)(image).shape == (3, 7, 15)
    flat = numpy.full((1, 3, 8, 8), 200, numpy.uint8)
    numpy.testing.assert_array_equal(transforms.Resize(5).batch(flat), 200)   # a constant stays exactly itself


# ---------------------------------------------------------------- CenterCrop and RandomResizedCrop
def test_center_crop_cuts_torchvisions_window_and_pads_a_small_image():
    x = _images(2, h=9, w=8)
    numpy.testing.assert_array_equal(transforms.CenterCrop((4, 5)).batch(x), x[:, :, 2:6, 2:7])
    padded = transforms.CenterCrop(11).batch(x)                     # grow 2 rows and 3 columns: 1/1, 1/2
    assert padded.shape == (2, 3, 11, 11)
    numpy.testing.assert_array_equal(padded[:, :, 1:10, 1:9], x)
    assert (padded[:, :, 0] == 0).all() and (padded[:, :, :, 9:] == 0).all()


def test_random_resized_crop_boxes_respect_scale_and_ratio_and_differ_per_image():
    t = transforms.RandomResizedCrop(8, scale=(0.3, 0.9), ratio=(0.5, 2.0))
    top, left, h, w = t.boxes(500, 40, 30, numpy.random.default_rng(0))
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 40).all() and (left + w <= 30).all()
    area = h * w / (40 * 30)
    assert area.min() > 0.25 and area.max() < 0.95                  # rounding moves an edge by half a pixel
    assert (w / h).min() > 0.45 and (w / h).max() < 2.2
    assert len(set(zip(top.tolist(), left.tolist()))) > 100


def test_random_resized_crop_equals_cropping_then_resizing_each_image_with_pytorch():
    torch = _torch()
    x = numpy.random.default_rng(3).standard_normal((6, 3, 24, 20)).astype(numpy.float32)
    t = transforms.RandomResizedCrop((10, 12))
    out = t.batch(x, rng=numpy.random.default_rng(7))
    top, left, h, w = t.boxes(6, 24, 20, numpy.random.default_rng(7))
    for n in range(6):
        box = torch.from_numpy(x[n:n + 1, :, top[n]:top[n] + h[n], left[n]:left[n] + w[n]].copy())
        expected = torch.nn.functional.interpolate(box, size=(10, 12), mode="bilinear", align_corners=False,
                                                   antialias=True).numpy()[0]
        numpy.testing.assert_allclose(out[n], expected, rtol=1e-5, atol=1e-5, err_msg=f"image {n}")


def test_random_resized_crop_falls_back_to_the_central_box_when_no_draw_fits():
    t = transforms.RandomResizedCrop(4, scale=(5.0, 6.0))          # every draw is larger than the image
    top, left, h, w = t.boxes(3, 10, 40, numpy.random.default_rng(0))
    # the image is wider (4.0) than the largest ratio 4/3: the box is the full height, 13 wide, centred
    assert h.tolist() == [10] * 3 and w.tolist() == [13] * 3 and left.tolist() == [13] * 3
    numpy.testing.assert_array_equal(resize_boxes(numpy.ones((1, 1, 10, 40), numpy.float32), 2, 2, top[:1],
                                                  left[:1], h[:1], w[:1]), 1.0)


# ---------------------------------------------------------------- RandomCrop's torchvision options, vertical flip
def test_random_crop_takes_torchvisions_padding_forms_and_modes():
    x = numpy.arange(16, dtype=numpy.uint8).reshape(1, 1, 4, 4)
    out = transforms.RandomCrop(6, padding=(1, 1), padding_mode="reflect").batch(x, numpy.random.default_rng(0))
    numpy.testing.assert_array_equal(out[0, 0], numpy.pad(x[0, 0], 1, mode="reflect"))
    out = transforms.RandomCrop((5, 4), padding=(0, 1, 0, 0), fill=9).batch(x, numpy.random.default_rng(0))
    numpy.testing.assert_array_equal(out[0, 0, 0], [9, 9, 9, 9])
    assert transforms.RandomCrop(7, pad_if_needed=True).batch(x).shape == (1, 1, 7, 7)
    with pytest.raises(ValueError, match="pad_if_needed"):
        transforms.RandomCrop(7).batch(x)
    with pytest.raises(ValueError, match="padding_mode"):
        transforms.RandomCrop(2, padding_mode="wrap")


def test_vertical_flip_mirrors_rows():
    x = _images(2)
    numpy.testing.assert_array_equal(transforms.RandomVerticalFlip(1.0).batch(x), x[:, :, ::-1])


# ---------------------------------------------------------------- datasets with transform= and target_transform=
def test_a_dataset_with_transform_gives_transformed_examples_and_batches():
    images, labels = _images(10), numpy.arange(10) % 3
    t = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.25,) * 3)])
    ds = ArrayDataset(images, labels, transform=t, target_transform=lambda y: y + 10)
    x, y = ds[4]
    assert isinstance(x, minigrad.Tensor) and x.shape == (3, 12, 10) and y == 11
    numpy.testing.assert_allclose(x.numpy(), (images[4] / 255.0 - 0.5) / 0.25, rtol=1e-5, atol=1e-6)
    batch_x, batch_y = next(iter(DataLoader(ds, batch_size=4)))
    numpy.testing.assert_allclose(batch_x.numpy(), (images[:4] / 255.0 - 0.5) / 0.25, rtol=1e-5, atol=1e-6)
    assert batch_y.tolist() == [10, 11, 12, 10]


def test_a_dataset_transform_runs_once_per_batch_not_once_per_image():
    calls = []

    class Counting(transforms.ToTensor):
        def batch(self, x, rng=None):
            calls.append(len(x))
            return super().batch(x, rng)

    loader = DataLoader(ArrayDataset(_images(10), numpy.zeros(10, int), transform=Counting()), batch_size=4)
    assert [tuple(x.shape) for x, _ in loader] == [(4, 3, 12, 10), (4, 3, 12, 10), (2, 3, 12, 10)]
    assert calls == [4, 4, 2]


def test_random_dataset_transforms_are_reproducible_with_the_loaders_seed_and_prefetch():
    t = transforms.Compose([transforms.RandomResizedCrop(8), transforms.RandomHorizontalFlip(), transforms.ToTensor()])
    ds = ArrayDataset(_images(12), numpy.arange(12), transform=t)

    def epoch(**options):
        return [x.numpy() for x, _ in DataLoader(ds, batch_size=5, shuffle=True, seed=3, **options)]

    first, again, ahead = epoch(), epoch(), epoch(num_workers=2)
    for a, b, c in zip(first, again, ahead):
        numpy.testing.assert_array_equal(a, b)
        numpy.testing.assert_array_equal(a, c)
    other = [x.numpy() for x, _ in DataLoader(ds, batch_size=5, shuffle=True, seed=4)]
    assert any(a.shape != b.shape or not numpy.array_equal(a, b) for a, b in zip(first, other))


def test_cifar10_takes_torchvisions_arguments(tmp_path):
    write_cifar(tmp_path, n_per_batch=4)
    t = transforms.Compose([transforms.ToTensor()])
    ds = torchvision.datasets.CIFAR10(root=tmp_path, train=True, download=False, transform=t,
                                      target_transform=lambda y: -y)
    x, y = ds[0]
    assert isinstance(x, minigrad.Tensor) and x.shape == (3, 32, 32) and y == -int(ds.targets[0])
    assert ds.class_to_idx[ds.classes[3]] == 3


def test_a_dataset_refuses_a_transform_that_cannot_be_called():
    with pytest.raises(TypeError, match="transform must be callable"):
        ArrayDataset(_images(2), [0, 1], transform="ToTensor")


# ---------------------------------------------------------------- ImageFolder
def _write_folder(root, sizes):
    pil = pytest.importorskip("PIL.Image")
    rng = numpy.random.default_rng(0)
    written = {}
    for name, files in sizes.items():
        (root / name).mkdir(parents=True)
        for k, (h, w) in enumerate(files):
            pixels = rng.integers(0, 256, size=(h, w, 3), dtype=numpy.uint8)
            path = root / name / f"{k}.png"
            pil.fromarray(pixels).save(path)
            written[str(path)] = pixels.transpose(2, 0, 1)
    return written


def test_image_folder_reads_classes_from_folder_names_and_images_as_chw_uint8(tmp_path):
    written = _write_folder(tmp_path, {"bees": [(6, 5)], "ants": [(6, 5), (6, 5)]})
    (tmp_path / "ants" / "notes.txt").write_text("not an image")
    numpy.save(tmp_path / "bees" / "extra.npy", numpy.zeros((3, 6, 5), numpy.uint8))
    ds = torchvision.datasets.ImageFolder(tmp_path)
    assert ds.classes == ["ants", "bees"] and ds.class_to_idx == {"ants": 0, "bees": 1}
    assert len(ds) == 4 and ds.targets == [0, 0, 1, 1]
    image, label = ds[0]
    assert image.dtype == numpy.uint8 and label == 0
    numpy.testing.assert_array_equal(image, written[ds.samples[0][0]])
    x, y = next(iter(DataLoader(torchvision.datasets.ImageFolder(tmp_path, transform=transforms.ToTensor()),
                                batch_size=4)))
    assert x.shape == (4, 3, 6, 5) and y.tolist() == [0, 0, 1, 1]


def test_image_folder_batches_images_of_different_sizes_once_a_transform_makes_them_one_size(tmp_path):
    _write_folder(tmp_path, {"a": [(10, 14), (7, 7)], "b": [(20, 9)]})
    plain = DataLoader(torchvision.datasets.ImageFolder(tmp_path), batch_size=3)
    with pytest.raises(ValueError, match="different shapes.*Resize"):
        next(iter(plain))
    t = transforms.Compose([transforms.RandomResizedCrop(8), transforms.ToTensor()])
    x, _ = next(iter(DataLoader(torchvision.datasets.ImageFolder(tmp_path, transform=t), batch_size=3, seed=0)))
    assert x.shape == (3, 3, 8, 8) and x.dtype == numpy.float32


def test_image_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(minigrad.data.DatasetNotFoundError, match="is not a folder"):
        torchvision.datasets.ImageFolder(tmp_path / "missing")
    with pytest.raises(minigrad.data.DatasetNotFoundError, match="no sub-folders"):
        torchvision.datasets.ImageFolder(tmp_path)
    (tmp_path / "cats").mkdir()
    with pytest.raises(minigrad.data.DatasetNotFoundError, match="no image files"):
        torchvision.datasets.ImageFolder(tmp_path)


# ---------------------------------------------------------------- make_grid, models, paths
def test_make_grid_tiles_images_with_padding_like_torchvision():
    x = numpy.stack([numpy.full((3, 2, 2), k + 1, numpy.float32) for k in range(5)])
    grid = torchvision.utils.make_grid(minigrad.tensor(x), nrow=2, padding=1, pad_value=-1)
    assert isinstance(grid, minigrad.Tensor) and grid.shape == (3, 3 * 3 + 1, 2 * 3 + 1)
    g = grid.numpy()
    assert g[0, 1, 1] == 1 and g[0, 1, 4] == 2 and g[0, 4, 1] == 3 and g[0, 7, 4] == -1   # the empty sixth cell
    assert (g[:, 0] == -1).all() and (g[:, :, 3] == -1).all()


def test_make_grid_normalizes_and_turns_grey_into_three_channels():
    x = numpy.stack([numpy.full((1, 2, 2), v, numpy.float32) for v in (-2.0, 0.0, 2.0)])
    grid = torchvision.utils.make_grid(x, nrow=3, padding=0, normalize=True).numpy()
    assert grid.shape == (3, 2, 6)
    numpy.testing.assert_allclose(grid[:, 0, ::2], [[0.0, 0.5, 1.0]] * 3)
    each = torchvision.utils.make_grid(x, padding=0, normalize=True, scale_each=True).numpy()
    assert numpy.isfinite(each).all()                               # a constant image does not divide by zero
    assert torchvision.utils.make_grid(x[:1]).shape == (3, 2, 2)


def test_save_image_writes_a_png(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    torchvision.utils.save_image(minigrad.tensor(numpy.ones((2, 3, 4, 4), numpy.float32)), tmp_path / "grid.png")
    assert pil.open(tmp_path / "grid.png").size == (2 * (4 + 2) + 2, 4 + 2 + 2)


def test_vision_models_build_torchvisions_resnets_and_refuse_pretrained_weights():
    model = torchvision.models.resnet18(num_classes=7).eval()
    with minigrad.no_grad():
        assert model(minigrad.zeros(1, 3, 32, 32)).shape == (1, 7)
    with pytest.raises(ValueError, match="no pretrained weights.*weights=None"):
        torchvision.models.resnet18(weights="IMAGENET1K_V1")


def test_a_torchvision_script_finds_everything_at_torchvisions_paths():
    from minigrad.vision import datasets, models, transforms as t, utils
    for name in ["ToTensor", "Normalize", "Compose", "RandomCrop", "RandomHorizontalFlip", "Resize", "CenterCrop",
                 "RandomResizedCrop", "InterpolationMode", "Lambda"]:
        assert hasattr(t, name), name
    assert datasets.MNIST and datasets.CIFAR10 and datasets.ImageFolder and models.resnet18 and utils.make_grid
    assert minigrad.vision is torchvision


def test_random_transforms_inside_a_datasets_getitem_repeat_with_the_loaders_seed_even_with_prefetch():
    class TorchvisionStyle(minigrad.data.Dataset):          # the transform runs in __getitem__, without an rng
        def __init__(self):
            self.images, self.t = _images(12), transforms.RandomResizedCrop(6)

        def __len__(self):
            return 12

        def __getitem__(self, i):
            return self.t(self.images[i]), i

    def epoch(**options):
        minigrad.manual_seed(0)
        batches = []
        for x, _ in DataLoader(TorchvisionStyle(), batch_size=4, seed=1, **options):
            numpy.random.random()                           # the main thread uses the global RNG meanwhile
            batches.append(x.numpy())
        return batches

    first = epoch()
    for again in (epoch(), epoch(prefetch=True), epoch(num_workers=1)):
        for a, b in zip(first, again):
            numpy.testing.assert_array_equal(a, b)


def test_to_tensor_moves_channels_last_batches_to_channels_first_like_single_images():
    hwc = _images(3).transpose(0, 2, 3, 1)                  # (3, 12, 10, 3)
    ds = ArrayDataset(hwc, [0, 1, 2], transform=transforms.ToTensor())
    x, _ = next(iter(DataLoader(ds, batch_size=3)))
    assert x.shape == (3, 3, 12, 10) == (3,) + ds[0][0].shape
    numpy.testing.assert_allclose(x.numpy()[1], ds[1][0].numpy())


def test_resize_max_size_is_checked_as_torchvision_checks_it():
    with pytest.raises(ValueError, match="max_size.*larger than size"):
        transforms.Resize(32, max_size=20)
    with pytest.raises(ValueError, match="max_size applies to an int size"):
        transforms.Resize((32, 40), max_size=50)
