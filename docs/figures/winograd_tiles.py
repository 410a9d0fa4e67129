"""Chapter 3: Winograd's tiles, and the 2x2 output block each one makes.

    python docs/figures/winograd_tiles.py              # writes winograd_tiles.png

A 4x4 image with padding 1 (6x6 padded) and a 3x3 filter give a 4x4 output. F(2x2, 3x3)
cuts the padded input into 4x4 tiles that start every 2 pixels (so neighbours overlap by
two rows or columns); each tile gives one 2x2 block of the output. The script checks
with minigrad's own Conv2dWinograd that the output it draws equals the loop reference.
"""
import numpy
from common import draw_grid, plt, save

import minigrad  # noqa: E402
from minigrad.ops.conv import conv2d_reference  # noqa: E402
from minigrad.ops.winograd import Conv2dWinograd, tile_counts  # noqa: E402

TILES = {(0, 0): "#8ecae6", (0, 1): "#ffb703"}         # tile (th, tw) -> colour
BOTH = "#b5e48c"                                       # pixels read by both tiles


def main():
    x = numpy.arange(1, 17, dtype=numpy.float64).reshape(1, 1, 4, 4)        # (N, C, H, W)
    w = numpy.ones((1, 1, 3, 3)) / 9                                         # a 3x3 box filter
    y = Conv2dWinograd(padding=1)(minigrad.tensor(x), minigrad.tensor(w)).numpy()
    assert numpy.allclose(y, conv2d_reference(x, w, padding=1))              # the drawing shows true numbers
    assert tile_counts(4, 4) == (2, 2)                                       # 2x2 tiles for a 4x4 output

    padded_colours, output_colours = {}, {}
    for (th, tw), colour in TILES.items():
        for i in range(4):
            for j in range(4):
                pixel = (2 * th + i, 2 * tw + j)
                padded_colours[pixel] = BOTH if pixel in padded_colours else colour
        for a in range(2):
            for b in range(2):
                output_colours[(2 * th + a, 2 * tw + b)] = colour

    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 4.2), gridspec_kw={"width_ratios": [1.4, 1]})
    draw_grid(left, numpy.pad(x[0, 0], 1), padded_colours,
              "padded input 6x6: 4x4 tiles every 2 pixels\n(tile (0,0) blue, tile (0,1) orange, both green)",
              dashed=(1, 1, 4, 4))
    draw_grid(right, numpy.round(y[0, 0], 2), output_colours,
              "output 4x4 (3x3 box filter):\neach tile gives one 2x2 block")
    figure.text(0.56, 0.45, "->", fontsize=22, ha="center")
    figure.text(0.5, 0.02, "per tile and channel pair: 16 multiplications (U * V) instead of 4 x 9 = 36",
                ha="center", fontsize=10)
    save(figure, "winograd_tiles.png")


if __name__ == "__main__":
    main()
