"""Line and bar charts as uint8 RGB arrays, drawn with Pillow and its bundled font (nothing is
downloaded), for the experiments' PNGs."""
import numpy as np

COLOURS = [(200, 60, 50), (40, 90, 180), (60, 150, 70), (150, 90, 170), (220, 140, 30),
           (90, 90, 90), (30, 160, 160), (170, 120, 60)]


def _canvas(width, height):
    from PIL import Image, ImageDraw, ImageFont
    img = Image.new('RGB', (width, height), 'white')
    return img, ImageDraw.Draw(img), ImageFont.load_default()


def _dashed(draw, points, fill, dash=6):
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = max(1, int(np.hypot(x1 - x0, y1 - y0) // dash))
        for i in range(0, n, 2):
            a, b = i / n, min(i + 1, n) / n
            draw.line([(x0 + a * (x1 - x0), y0 + a * (y1 - y0)),
                       (x0 + b * (x1 - x0), y0 + b * (y1 - y0))], fill=fill, width=2)


def line_plot(series, title, xlabel, ylabel, hline=None, width=640, height=420):
    """series: [(label, xs, ys, dashed)]; ys may hold None (not measured). hline: a y value
    drawn across (Figure 1's 25% line)."""
    img, draw, font = _canvas(width, height)
    left, right, top, bottom = 60, width - 20, 40, height - 50
    xs = [x for _, sx, sy, _ in series for x, y in zip(sx, sy) if y is not None] or [0, 1]
    ys = [y for _, _, sy, _ in series for y in sy if y is not None] + \
        ([hline] if hline is not None else []) or [0, 1]
    x_lo, x_hi = min(xs), max(max(xs), min(xs) + 1)
    y_lo, y_hi = 0.0, max(ys) * 1.05 or 1.0

    def at(x, y):
        return (left + (x - x_lo) / (x_hi - x_lo) * (right - left),
                bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top))
    draw.rectangle([left, top, right, bottom], outline='black')
    for i in range(6):
        y = y_lo + i * (y_hi - y_lo) / 5
        draw.text((4, at(x_lo, y)[1] - 6), f'{y:.2f}', fill='black', font=font)
        x = x_lo + i * (x_hi - x_lo) / 5
        draw.text((at(x, y_lo)[0] - 8, bottom + 6), f'{x:g}', fill='black', font=font)
    if hline is not None:
        draw.line([at(x_lo, hline), at(x_hi, hline)], fill=(160, 160, 160), width=1)
    for i, (label, sx, sy, dashed) in enumerate(series):
        points = [at(x, y) for x, y in zip(sx, sy) if y is not None]
        colour = COLOURS[i % len(COLOURS)]
        if len(points) > 1:
            (_dashed if dashed else lambda d, p, fill: d.line(p, fill=fill, width=2))(
                draw, points, fill=colour)
        draw.text((right - 200, top + 8 + 14 * i), ('- - ' if dashed else '--- ') + label,
                  fill=colour, font=font)
    draw.text((left, 12), title, fill='black', font=font)
    draw.text(((left + right) // 2 - 30, height - 22), xlabel, fill='black', font=font)
    draw.text((4, 20), ylabel, fill='black', font=font)
    return np.asarray(img)


def bar_plot(labels, groups, title, ylabel, width=720, height=420):
    """groups: [(name, values)] with one value per label (None: no bar), drawn side by side
    per label; values may be negative."""
    img, draw, font = _canvas(width, height)
    left, right, top, bottom = 60, width - 20, 40, height - 70
    vals = [v for _, vs in groups for v in vs if v is not None] or [0]
    lo, hi = min(0, min(vals)), max(0, max(vals))
    hi = hi + 0.1 * (hi - lo or 1)
    lo = lo - 0.1 * (hi - lo or 1) if lo < 0 else lo

    def y_of(v):
        return bottom - (v - lo) / (hi - lo) * (bottom - top)
    draw.line([(left, y_of(0)), (right, y_of(0))], fill='black')
    slot = (right - left) / max(1, len(labels))
    bar = slot * 0.8 / max(1, len(groups))
    for i, label in enumerate(labels):
        x0 = left + i * slot + slot * 0.1
        for g, (_, vs) in enumerate(groups):
            v = vs[i]
            if v is None:
                continue
            x = x0 + g * bar
            draw.rectangle([x, min(y_of(0), y_of(v)), x + bar - 2, max(y_of(0), y_of(v))],
                           fill=COLOURS[g % len(COLOURS)])
            draw.text((x, min(y_of(0), y_of(v)) - 12), f'{v:+.1f}', fill='black', font=font)
        draw.text((x0, bottom + 8 + 12 * (i % 2)), label, fill='black', font=font)
    for g, (name, _) in enumerate(groups):
        draw.text((right - 180, top + 8 + 14 * g), name, fill=COLOURS[g % len(COLOURS)], font=font)
    draw.text((left, 12), title, fill='black', font=font)
    draw.text((4, 20), ylabel, fill='black', font=font)
    return np.asarray(img)
