"""Pictures as uint8 arrays and PNG files: the conv1 filter grid (the paper's Figure 3), a
top-5 sheet for the user's own images (its Figure 4, left) and their nearest training images
(its Figure 4, right)."""
import numpy as np

from alexnet_tf1.io_util import atomic_write_bytes


def filter_grid(tower_weights, cols=16, zoom=3, gap=1):
    """conv1 kernels (k, k, 3, n) per tower -> one RGB image, tower 0's block above tower 1's.

    Each kernel is stretched to 0..255 on its own, as the paper's figure shows them.
    """
    tiles = []
    for w in tower_weights:
        w = np.asarray(w, np.float32)
        lo = w.min(axis=(0, 1, 2), keepdims=True)
        hi = w.max(axis=(0, 1, 2), keepdims=True)
        tiles.append(((w - lo) / np.maximum(hi - lo, 1e-12) * 255).astype(np.uint8))
    k, n = tiles[0].shape[0], tiles[0].shape[-1]
    rows_per_tower = -(-n // cols)
    cell = k * zoom + gap
    band = rows_per_tower * cell
    out = np.full((len(tiles) * band + gap * (len(tiles) - 1) * 3, cols * cell + gap, 3), 255,
                  np.uint8)
    for t, tile in enumerate(tiles):
        top = t * (band + 3 * gap)
        for i in range(tile.shape[-1]):
            r, c = divmod(i, cols)
            img = tile[..., i].repeat(zoom, 0).repeat(zoom, 1)
            y, x = top + r * cell + gap, c * cell + gap
            out[y:y + k * zoom, x:x + k * zoom] = img[..., :3] if img.shape[-1] >= 3 else img
    return out


def png_bytes(image):
    import imageio.v3 as iio
    return iio.imwrite('<bytes>', image, extension='.png')


def save_png(path, image):
    atomic_write_bytes(path, png_bytes(image))


def top5_sheet(pictures, predictions, width=256):
    """pictures: uint8 (H, W, 3) each; predictions: [(name, probability)] * 5 each.

    One row per picture: the picture, then five bars with their class names, as Figure 4.
    """
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default()        # bundled with Pillow: nothing is downloaded
    row_h, text_w = width + 8, 360
    sheet = Image.new('RGB', (width + text_w + 16, row_h * len(pictures)), 'white')
    draw = ImageDraw.Draw(sheet)
    for i, (pic, preds) in enumerate(zip(pictures, predictions)):
        top = i * row_h + 4
        sheet.paste(Image.fromarray(pic).resize((width, width)), (4, top))
        x0 = width + 12
        for j, (name, p) in enumerate(preds):
            y = top + 8 + j * (width // 5)
            draw.rectangle([x0, y, x0 + int(p * (text_w - 10)), y + 14], fill=(200, 80, 80) if j == 0 else (120, 150, 200))
            draw.text((x0 + 2, y + 16), f'{name[:40]}  {p:.1%}', fill='black', font=font)
    return np.asarray(sheet)


def neighbour_sheet(rows, tile=128, gap=4):
    """rows: [query, neighbour 1, ...] uint8 (H, W, 3 or 1) pictures each. One row per query,
    every picture scaled to tile x tile, gap px of white between them: the paper's Figure 4
    (right)."""
    from PIL import Image
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (tile + gap) + gap, cols * (tile + gap) + gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, pic in enumerate(row):
            pic = np.asarray(pic, np.uint8)
            if pic.ndim == 2 or pic.shape[-1] == 1:
                pic = np.repeat(pic.reshape(pic.shape[:2] + (1,)), 3, axis=-1)
            if pic.shape[:2] != (tile, tile):
                pic = np.asarray(Image.fromarray(pic).resize((tile, tile)))
            y, x = gap + i * (tile + gap), gap + j * (tile + gap)
            out[y:y + tile, x:x + tile] = pic
    return out
