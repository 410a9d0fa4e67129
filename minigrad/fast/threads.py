"""Several CPU cores on one convolution: blocks of image chunks on separate threads (fast layer).

The fast Conv2d sends the batch through im2col and the matrix products in small
chunks of images (tuning.CONV_CHUNK_BYTES of cols each, so that cols stays in the
core's cache). Each chunk is too small for a multi-threaded GEMM: OpenBLAS splits a
(16, 144) @ (144, 1024) product badly between two threads, and waking Numba's thread
pool for a small im2col costs more than it saves, so a second core gained almost
nothing that way.

So on the CPU the chunks themselves are shared out: with T threads, the list of
chunks is cut into T contiguous blocks, and thread t runs `work(block t)`, chunk
after chunk, on one core. Inside, everything is single-threaded and releases
Python's lock (the GIL): the matrix products are NumPy calls with OpenBLAS held to
1 thread for the duration, and im2col/col2im run their serial `nogil` loops
(kernels/numba_cpu, tuning.NUMBA_SERIAL_BELOW_BYTES). (Not quite everything: a layer
whose weight is over that size gets chunks as large as its weight (conv.py), and their
im2col/col2im run Numba's parallel loops, one block at a time under `launch_lock`:
ResNet-18's 512-channel layers. Correct, but there the threads wait for each other.)
The blocks write disjoint images of y
and dx, and dW adds the chunks' products in chunk order within each part of the
batch, then the parts' sums in part order (`sum_in_order`). The parts and chunks
depend on the sizes only, never on T (`parts_for`), and a block is a run of whole
parts, so every number is the same whatever the threads: which thread computed a
part, or when, cannot change a result.

A convolution whose chunks make a single block (a batch of one image) also gets a
1-thread GEMM: a 2-thread GEMM wakes OpenBLAS's worker, which then keeps spinning on
a core for a while and slows the next convolution's blocks; and `one_blas_thread` keeps other small
products (the Winograd weight transforms) off the second BLAS thread for the same
reason.

T is the number of threads OpenBLAS was given (OPENBLAS_NUM_THREADS, or the
cores). Limiting BLAS threads needs threadpoolctl; without it, or with T = 1, or
with a single chunk, `run_blocks` simply runs one block on the calling thread.
"""
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from minigrad.fast import tuning

_lock = threading.Lock()
_state = {}        # "controller": ThreadpoolController or None; "pool": ThreadPoolExecutor of "workers" threads


def _controller():
    """The threadpoolctl controller of this process's BLAS libraries, or None (made once)."""
    with _lock:
        if "controller" not in _state:
            try:
                from threadpoolctl import ThreadpoolController
                _state["controller"] = ThreadpoolController().select(user_api="blas")
            except ImportError:
                _state["controller"] = None
        return _state["controller"]


def threads_for_blocks():
    """How many blocks to run at once: BLAS's thread count, or 1 where it cannot be limited."""
    controller = _controller()
    if controller is None or not controller.lib_controllers:
        return 1
    return max(1, min(lib.num_threads for lib in controller.lib_controllers))


@contextlib.contextmanager
def one_blas_thread(device):
    """Inside: BLAS on one thread (on the CPU, where threadpoolctl can set it), for small products.

    A product that OpenBLAS thinks big enough to share (a (16, 9) @ (9, 4096) weight transform
    is) wakes its worker thread, which then spins on a core for a while after the product is
    done, and the next convolution's two blocks share the other core.
    """
    controller = _controller() if device == "cpu" else None
    if controller is None or threads_for_blocks() == 1:
        yield
        return
    with controller.limit(limits=1):
        yield


def image_parts(n, bytes_per_image, budget, parts=1):
    """The batch axis cut into `parts` parts of equal size (to one image; fewer when there are fewer
    images), each part a list of chunks: slices holding at most `budget` bytes of a chunk's work array
    (>= 1 image), of equal size within the part (to one image).

    Parts are what threads share out (`split_into_blocks`): equal parts give 1, 2 or `parts` threads
    equal work. (128 images, 7 a chunk, cut greedily would be 18 chunks of 7 and one of 2: blocks of 70
    and 58 images at 2 threads, and one thread would wait for the other; cut this way, 64 and 64.) A
    gradient is summed part by part (one partial sum per part, `sum_in_order`), so `parts` also bounds
    how many partial sums are alive at once.

    budget None: one chunk of the whole batch (the GPU, whose products want to be large). An empty
    batch has no parts.
    """
    if budget is None:
        return [[slice(0, n)]]
    if n == 0:
        return []
    fits = max(1, budget // max(1, bytes_per_image))               # images within the budget
    count = max(1, min(n, parts))
    part_size = -(-n // count)                                     # -(-a // b): ceil(a / b)
    chunks_per_part = -(-part_size // fits)
    return [_equal_slices(part.start, part.stop, min(chunks_per_part, part.stop - part.start))
            for part in _equal_slices(0, n, count)]


def image_chunks(n, bytes_per_image, budget, at_least=1):
    """The chunks of `image_parts` in one list: at least `at_least` of them when there are that many images."""
    return [chunk for part in image_parts(n, bytes_per_image, budget, at_least) for chunk in part]


def _equal_slices(start, stop, count):
    """[start, stop) cut into `count` contiguous slices whose lengths differ by one at most."""
    size, extra = divmod(stop - start, count)
    slices = []
    for index in range(count):                                     # the first `extra` are one longer
        end = start + size + (1 if index < extra else 0)
        slices.append(slice(start, end))
        start = end
    return slices


def parts_for(n, bytes_per_image, budget, device):
    """`image_parts` with tuning.CHUNKS_AT_LEAST parts on the CPU (so that several threads can share
    them), whatever the number of threads: the partition, and so every result, depends on the sizes only."""
    return image_parts(n, bytes_per_image, budget, tuning.CHUNKS_AT_LEAST if device == "cpu" else 1)


def fold_parts(block, step):
    """For each part of `block`, in order: step(images, total) over its chunks, chunk after chunk, from
    total None; the parts' totals. The order in which a gradient's chunk products must be added."""
    totals = []
    for part in block:
        total = None
        for images in part:
            total = step(images, total)
        totals.append(total)
    return totals


def sum_in_order(terms):
    """terms[0] + terms[1] + ... added left to right, in place into terms[0] (a gradient's products, chunk
    by chunk, or its parts' sums). One order whatever thread computed which term: the sum does not
    depend on the threads."""
    total = terms[0]
    for term in terms[1:]:
        total += term
    return total


def split_into_blocks(chunks, count):
    """`chunks` cut into at most `count` contiguous blocks of (nearly) equal length."""
    count = max(1, min(count, len(chunks)))
    size, extra = divmod(len(chunks), count)
    blocks, start = [], 0
    for index in range(count):
        stop = start + size + (1 if index < extra else 0)
        blocks.append(chunks[start:stop])
        start = stop
    return blocks


def run_blocks(work, chunks, device):
    """[work(block) for each block of chunks], the blocks on separate threads when that helps.

    On the GPU, or with one thread or one chunk: one block, on the calling thread
    (with one BLAS thread where several were allowed, see the module docstring).
    """
    controller = _controller() if device == "cpu" else None
    threads = threads_for_blocks() if controller is not None else 1
    if threads == 1:
        return [work(chunks)]
    blocks = split_into_blocks(chunks, threads)
    if len(blocks) == 1:                       # one small chunk: a 1-thread GEMM, so that OpenBLAS's
        with one_blas_thread(device):          # workers are not woken (they spin for a while after,
            return [work(chunks)]              # taking a core from the next convolution's blocks)
    with _lock:
        if _state.get("workers", 0) < len(blocks):            # made once (again if more threads are asked)
            if "pool" in _state:
                _state["pool"].shutdown(wait=False)
            _state["pool"] = ThreadPoolExecutor(len(blocks), thread_name_prefix="minigrad-conv")
            _state["workers"] = len(blocks)
        pool = _state["pool"]
    with one_blas_thread(device):              # one BLAS thread per block while the blocks run
        futures = [pool.submit(work, block) for block in blocks]
        return [future.result() for future in futures]
