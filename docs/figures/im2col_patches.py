"""Chapter 3: how a patch of the image becomes a column of im2col's matrix.

    python docs/figures/im2col_patches.py              # writes im2col_patches.png

A 1-channel 4x4 image whose pixels are numbered 0..15 goes through minigrad's own
im2col (minigrad/ops/im2col.py) with a 3x3 kernel, stride 1, no padding. The
output is 2x2, so there are 4 patches and cols has shape (C*KH*KW, N*OH*OW) =
(9, 4): column (oh, ow) holds the 9 pixels that the kernel sees at output
position (oh, ow). Two patches and their columns are coloured alike.
"""
import numpy
from common import draw_grid, plt, save

from minigrad.ops.im2col import im2col  # noqa: E402

COLOURS = {(0, 0): "#8ecae6", (1, 1): "#ffb703"}       # output position -> colour


def main():
    x = numpy.arange(16, dtype=numpy.float64).reshape(1, 1, 4, 4)            # (N, C, H, W)
    cols = im2col(x, 3, 3, stride=(1, 1), padding=(0, 0), dilation=(1, 1))    # (C*KH*KW, N*OH*OW) = (9, 4)

    image_colours, column_colours = {}, {}
    for (oh, ow), colour in COLOURS.items():
        for kh in range(3):
            for kw in range(3):
                pixel = (oh + kh, ow + kw)
                # a pixel in both patches is drawn green
                image_colours[pixel] = "#b5e48c" if pixel in image_colours else colour
                column_colours[(kh * 3 + kw, oh * 2 + ow)] = colour

    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 4.2), gridspec_kw={"width_ratios": [1, 1.2]})
    draw_grid(left, x[0, 0], image_colours, "x: one 4x4 channel\n(patch (0,0) blue, patch (1,1) orange,\n"
                                              "pixels in both green)")
    draw_grid(right, cols, column_colours, "im2col(x, 3, 3): shape (9, 4)\none column per output position (oh, ow)",
              row_labels=[f"(c0,kh{kh},kw{kw})" for kh in range(3) for kw in range(3)],
              column_labels=[f"{oh},{ow}" for oh in range(2) for ow in range(2)])
    figure.text(0.47, 0.45, "->", fontsize=22, ha="center")
    save(figure, "im2col_patches.png")


if __name__ == "__main__":
    main()
