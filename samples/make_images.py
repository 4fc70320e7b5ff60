"""Regenerates samples/media; needs Pillow.

Writes the lead images (abstract, photo-like coastal scenes, 1200x675 JPEG,
no text) and the small one-page PDF attachments used by the fictional sample
releases in samples/releases/. Deterministic: the same script gives the same
pictures (each scene draws from its own seeded random generator).

    python3 -m venv /tmp/pil && /tmp/pil/bin/pip install pillow
    /tmp/pil/bin/python samples/make_images.py
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

W, H = 1200, 675
MEDIA = Path(__file__).resolve().parent / "media"


# --------------------------------------------------------------------------
# helpers


def lerp(a, b, t):
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=False))


def vgradient(size, stops):
    """Vertical gradient from a list of (position 0..1, rgb) stops."""
    w, h = size
    col = Image.new("RGB", (1, h))
    px = col.load()
    for y in range(h):
        t = y / max(h - 1, 1)
        for (p0, c0), (p1, c1) in zip(stops, stops[1:], strict=False):
            if p0 <= t <= p1:
                px[0, y] = lerp(c0, c1, (t - p0) / max(p1 - p0, 1e-9))
                break
    return col.resize((w, h))


def glow(img, cx, cy, radius, color, strength=0.8):
    """Soft radial light (sun, moon, lamp) added onto img."""
    mask = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(mask)
    for i in range(24, 0, -1):
        r = radius * i / 8
        a = int(255 * strength * (1 - i / 24) ** 2)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=a)
    mask = mask.filter(ImageFilter.GaussianBlur(radius / 3))
    img.paste(Image.new("RGB", img.size, color), (0, 0), mask)
    d = ImageDraw.Draw(img)
    r = radius * 0.35
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=lerp(color, (255, 255, 255), 0.5))


def ridge(rng, y0, amp, rough, step=6):
    """Points of a natural-looking skyline from left to right."""
    pts, y = [], y0
    phase = rng.uniform(0, 6.28)
    for x in range(0, W + step, step):
        y += rng.uniform(-rough, rough)
        y = min(max(y, y0 - amp), y0 + amp)
        pts.append((x, y + math.sin(x / 170 + phase) * amp * 0.4))
    return pts


def fill_below(draw, pts, color, bottom=H):
    draw.polygon([(0, bottom)] + pts + [(W, bottom)], fill=color)


def waves(img, rng, top, bottom, color, count=140, alpha=70):
    """Thin horizontal glints on the water, denser and wider near the viewer."""
    layer = Image.new("RGB", img.size, color)
    mask = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(mask)
    for _ in range(count):
        t = rng.random() ** 1.6
        y = top + (bottom - top) * t
        length = 20 + 180 * t * rng.random()
        x = rng.uniform(-50, W)
        d.line((x, y, x + length, y), fill=int(alpha * (0.4 + t)), width=1 + int(t * 2))
    mask = mask.filter(ImageFilter.GaussianBlur(1.2))
    img.paste(layer, (0, 0), mask)


def reflection(img, cx, top, bottom, color, width=60, alpha=110):
    mask = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(mask)
    y = top
    while y < bottom:
        t = (y - top) / max(bottom - top, 1)
        half = width * (0.4 + t * 1.6)
        d.line((cx - half, y, cx + half, y), fill=int(alpha * (1 - t * 0.6)), width=2)
        y += 5
    mask = mask.filter(ImageFilter.GaussianBlur(3))
    img.paste(Image.new("RGB", img.size, color), (0, 0), mask)


def clouds(img, rng, n, ybox, color, alpha=120, blur=18):
    mask = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(mask)
    for _ in range(n):
        cx, cy = rng.uniform(-100, W + 100), rng.uniform(*ybox)
        for _ in range(6):
            rx, ry = rng.uniform(60, 180), rng.uniform(14, 40)
            ox, oy = rng.uniform(-120, 120), rng.uniform(-15, 15)
            d.ellipse((cx + ox - rx, cy + oy - ry, cx + ox + rx, cy + oy + ry), fill=alpha)
    mask = mask.filter(ImageFilter.GaussianBlur(blur))
    img.paste(Image.new("RGB", img.size, color), (0, 0), mask)


def houses(draw, rng, x0, x1, base, color, roof, size=(26, 48)):
    x = x0
    while x < x1:
        w = rng.uniform(*size)
        h = w * rng.uniform(0.6, 0.9)
        draw.rectangle((x, base - h, x + w, base), fill=color)
        draw.polygon(
            [(x - 3, base - h), (x + w / 2, base - h - w * 0.35), (x + w + 3, base - h)], fill=roof
        )
        x += w + rng.uniform(4, 22)


def boat(draw, x, y, s, hull, sail=None):
    draw.polygon(
        [(x - 40 * s, y), (x + 40 * s, y), (x + 28 * s, y + 12 * s), (x - 30 * s, y + 12 * s)],
        fill=hull,
    )
    if sail:
        draw.line((x, y, x, y - 60 * s), fill=hull, width=max(1, int(2 * s)))
        draw.polygon(
            [(x + 2 * s, y - 58 * s), (x + 2 * s, y - 4 * s), (x + 34 * s, y - 4 * s)], fill=sail
        )


def person(draw, x, base, h, color):
    head = h * 0.13
    w = h * 0.12
    draw.ellipse((x - head / 2, base - h, x + head / 2, base - h + head), fill=color)
    draw.rectangle(
        (x - head * 0.18, base - h + head * 0.9, x + head * 0.18, base - h + head * 1.3), fill=color
    )
    draw.rounded_rectangle(
        (x - w, base - h + head * 1.2, x + w, base - h * 0.42), int(w * 0.6), fill=color
    )
    leg = max(2, int(h * 0.075))
    draw.line((x - w * 0.45, base - h * 0.46, x - w * 0.55, base), fill=color, width=leg)
    draw.line((x + w * 0.45, base - h * 0.46, x + w * 0.55, base), fill=color, width=leg)


def finish(img, rng, grain=5, vignette=0.28):
    """Light grain and vignette so the flat shapes read more like a photo."""
    noise = Image.frombytes("L", img.size, rng.randbytes(img.size[0] * img.size[1]))
    noise = noise.point(lambda v: 128 + (v - 128) * grain // 128)
    noise = noise.filter(ImageFilter.GaussianBlur(0.6))
    img = ImageChops.add(img, Image.merge("RGB", [noise] * 3), scale=1.0, offset=-128)
    vig = Image.radial_gradient("L").resize(img.size)
    vig = vig.point(lambda v: 255 - int(v * vignette))
    dark = Image.new("RGB", img.size, (0, 0, 0))
    return Image.composite(img, dark, vig)


# --------------------------------------------------------------------------
# scenes (one per release image)


def coastal_clinics_reopen(rng):
    img = vgradient(
        (W, H),
        [
            (0, (250, 214, 170)),
            (0.45, (255, 236, 210)),
            (0.5, (160, 190, 205)),
            (1, (70, 110, 140)),
        ],
    )
    glow(img, 880, 300, 60, (255, 220, 160))
    clouds(img, rng, 5, (80, 220), (255, 240, 225), 90)
    reflection(img, 880, 340, 675, (255, 225, 180))
    waves(img, rng, 340, 675, (235, 240, 245))
    d = ImageDraw.Draw(img)
    fill_below(d, ridge(rng, 470, 18, 3), (205, 180, 140))
    fill_below(d, ridge(rng, 560, 10, 2), (176, 150, 112))
    # the clinic: low white building with a row of solar panels
    d.rectangle((300, 400, 560, 480), fill=(244, 242, 236))
    d.rectangle((300, 470, 560, 482), fill=(190, 185, 175))
    for i in range(6):
        d.rectangle((318 + i * 40, 420, 342 + i * 40, 448), fill=(120, 150, 170))
    for i in range(5):
        d.polygon(
            [(315 + i * 48, 400), (355 + i * 48, 400), (348 + i * 48, 388), (322 + i * 48, 388)],
            fill=(40, 60, 95),
        )
    return img


def clean_water_unequal_shores(rng):
    img = vgradient(
        (W, H),
        [
            (0, (190, 214, 232)),
            (0.55, (232, 240, 244)),
            (0.58, (150, 180, 190)),
            (1, (96, 130, 140)),
        ],
    )
    clouds(img, rng, 6, (60, 260), (255, 255, 255), 110)
    waves(img, rng, 392, 675, (225, 236, 240), 90)
    d = ImageDraw.Draw(img)
    fill_below(d, ridge(rng, 395, 6, 1.5), (120, 140, 130), bottom=420)
    houses(d, rng, 40, 1180, 396, (214, 200, 180), (150, 90, 70), size=(18, 34))
    # a clear sample bottle held up against the sky, with a forearm and fist
    skin, shade = (160, 112, 84), (132, 90, 66)
    d.polygon([(790, 675), (835, 470), (905, 470), (930, 675)], fill=skin)
    d.polygon([(900, 675), (905, 470), (915, 480), (930, 675)], fill=shade)
    glass = Image.new("L", (W, H), 0)
    gd = ImageDraw.Draw(glass)
    gd.rounded_rectangle((815, 200, 925, 470), 24, fill=150)
    gd.rectangle((845, 160, 895, 205), fill=150)
    img.paste(
        Image.new("RGB", (W, H), (236, 246, 250)),
        (0, 0),
        glass.filter(ImageFilter.GaussianBlur(1.5)),
    )
    d.rounded_rectangle((815, 200, 925, 470), 24, outline=(150, 175, 185), width=3)
    d.rounded_rectangle((819, 290, 921, 466), 20, fill=(170, 205, 215))  # the water sample
    d.line((826, 292, 914, 292), fill=(215, 235, 240), width=3)
    d.rectangle((845, 168, 895, 204), outline=(150, 175, 185), width=3)  # neck
    d.rectangle((840, 150, 900, 172), fill=(40, 110, 160))  # cap
    d.line((835, 220, 835, 440), fill=(250, 252, 252), width=5)  # highlight
    d.rounded_rectangle((800, 400, 940, 500), 34, fill=skin)  # fist around the bottle
    for i in range(4):
        d.line((806, 420 + i * 20, 850, 420 + i * 20), fill=shade, width=3)
    return img


def abidjan_inondations(rng):
    img = vgradient(
        (W, H),
        [
            (0, (90, 60, 90)),
            (0.3, (225, 120, 70)),
            (0.55, (250, 190, 110)),
            (0.57, (160, 100, 80)),
            (1, (60, 50, 60)),
        ],
    )
    glow(img, 360, 360, 50, (255, 190, 110), 0.9)
    clouds(img, rng, 4, (60, 200), (120, 70, 90), 120)
    reflection(img, 360, 385, 675, (255, 180, 110), 50, 130)
    waves(img, rng, 385, 675, (255, 200, 150), 110, 60)
    d = ImageDraw.Draw(img)
    fill_below(d, ridge(rng, 380, 5, 1), (70, 50, 60), bottom=395)
    houses(d, rng, 560, 1200, 386, (80, 60, 66), (110, 100, 105), size=(28, 44))
    for x in (140, 520, 1100):  # palm trunks
        d.line((x, 386, x + 12, 250), fill=(50, 40, 50), width=6)
        for a in range(0, 360, 45):
            r = math.radians(a)
            d.line(
                (x + 12, 250, x + 12 + 60 * math.cos(r), 250 + 30 * math.sin(r) + 10),
                fill=(50, 40, 50),
                width=4,
            )
    return img


def safe_harbor_petition(rng):
    img = vgradient(
        (W, H),
        [
            (0, (25, 32, 70)),
            (0.45, (120, 80, 120)),
            (0.6, (215, 140, 120)),
            (0.62, (40, 50, 80)),
            (1, (18, 22, 45)),
        ],
    )
    clouds(img, rng, 3, (80, 200), (70, 60, 110), 110)
    waves(img, rng, 420, 675, (240, 170, 120), 80, 50)
    d = ImageDraw.Draw(img)
    d.polygon([(0, 470), (1200, 380), (1200, 430), (0, 560)], fill=(40, 38, 55))  # harbour wall
    for i in range(22):  # lanterns along the wall
        t = i / 21
        x, y = 40 + t * 1120, 460 - t * 88
        glow(img, x, y - 10, 10 + 6 * (1 - t), (255, 190, 90), 0.9)
    d = ImageDraw.Draw(img)
    for x, y, s in ((260, 600, 1.2), (720, 560, 0.9), (980, 520, 0.7)):
        boat(d, x, y, s, (20, 22, 40), (35, 38, 60))
    return img


def coastal_relocation_rights(rng):
    img = vgradient(
        (W, H),
        [
            (0, (120, 150, 190)),
            (0.45, (240, 200, 150)),
            (0.52, (250, 220, 170)),
            (0.53, (150, 140, 130)),
            (1, (70, 80, 90)),
        ],
    )
    glow(img, 620, 320, 45, (255, 210, 140), 0.7)
    clouds(img, rng, 5, (60, 230), (250, 220, 200), 100)
    reflection(img, 620, 360, 675, (255, 215, 160), 40, 100)
    waves(img, rng, 360, 675, (240, 220, 190), 120)
    d = ImageDraw.Draw(img)
    d.polygon(
        [(0, 430), (200, 410), (520, 418), (640, 440), (300, 452), (0, 460)], fill=(88, 96, 80)
    )  # low spit
    houses(d, rng, 90, 360, 424, (60, 58, 60), (45, 40, 45), size=(16, 26))
    for _ in range(9):  # gulls
        x, y = rng.uniform(700, 1150), rng.uniform(90, 260)
        s = rng.uniform(6, 12)
        d.line((x - s, y - s / 3, x, y), fill=(60, 60, 70), width=2)
        d.line((x, y, x + s, y - s / 3), fill=(60, 60, 70), width=2)
    return img


def flood_season_appeal(rng):
    img = vgradient(
        (W, H),
        [
            (0, (70, 76, 86)),
            (0.5, (140, 146, 150)),
            (0.62, (180, 200, 205)),
            (0.64, (110, 120, 100)),
            (1, (70, 80, 60)),
        ],
    )
    clouds(img, rng, 10, (0, 300), (60, 64, 72), 170, 26)
    clouds(img, rng, 5, (150, 330), (110, 116, 124), 110, 22)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 415, 1200, 428), fill=(215, 230, 232))  # thin bright sea band
    fill_below(d, ridge(rng, 440, 6, 1.5), (96, 110, 80))
    fill_below(d, ridge(rng, 540, 12, 2), (80, 94, 64))
    rain = Image.new("L", (W, H), 0)
    rd = ImageDraw.Draw(rain)
    for _ in range(160):  # rain curtains under the heaviest clouds
        x = rng.uniform(500, 1150)
        rd.line((x, rng.uniform(160, 260), x - 30, rng.uniform(400, 440)), fill=50, width=2)
    rain = rain.filter(ImageFilter.GaussianBlur(4))
    img.paste(Image.new("RGB", (W, H), (60, 66, 76)), (0, 0), rain)
    return img


def tides_of_displacement(rng):
    img = vgradient(
        (W, H),
        [
            (0, (150, 200, 200)),
            (0.5, (214, 228, 216)),
            (0.52, (120, 170, 170)),
            (1, (170, 160, 130)),
        ],
    )
    clouds(img, rng, 4, (80, 240), (235, 240, 230), 80, 30)
    waves(img, rng, 350, 560, (230, 240, 235), 100)
    d = ImageDraw.Draw(img)
    fill_below(
        d,
        [(x, 560 + 40 * math.sin(x / 260) + x * 0.05) for x in range(0, W + 10, 10)],
        (196, 180, 140),
    )
    # remains of a jetty walking out into the shallows
    for i in range(11):
        t = i / 10
        x = 180 + t * 620
        y = 590 - t * 200
        h = 70 * (1 - t * 0.7)
        d.rectangle((x, y - h, x + 12 * (1 - t * 0.6), y), fill=(70, 60, 52))
        if i < 6:
            d.line(
                (x, y - h * 0.8, x + 62, y - h * 0.8 - 20),
                fill=(80, 68, 58),
                width=max(2, int(6 * (1 - t))),
            )
    return img


def ridgeport_water(rng):
    img = vgradient(
        (W, H),
        [(0, (70, 130, 200)), (0.5, (170, 210, 240)), (0.52, (40, 110, 150)), (1, (30, 80, 120))],
    )
    clouds(img, rng, 3, (60, 180), (255, 255, 255), 120)
    waves(img, rng, 350, 675, (200, 230, 245), 120)
    d = ImageDraw.Draw(img)
    fill_below(
        d,
        [(x, 300 + x * 0.35 + 10 * math.sin(x / 90)) for x in range(0, W + 10, 10)],
        (110, 140, 80),
    )
    fill_below(d, [(x, 470 + x * 0.12) for x in range(0, W + 10, 10)], (90, 120, 60))
    # wooden house, tank and hand pump on the hillside
    d.rectangle((150, 330, 330, 450), fill=(170, 120, 80))
    d.polygon([(135, 330), (240, 270), (345, 330)], fill=(110, 70, 50))
    d.rectangle((220, 390, 255, 450), fill=(90, 60, 40))
    d.ellipse((360, 360, 440, 385), fill=(80, 110, 130))
    d.rectangle((360, 372, 440, 450), fill=(90, 120, 140))
    d.rectangle((475, 400, 485, 470), fill=(60, 60, 65))
    d.line((480, 405, 525, 390), fill=(60, 60, 65), width=6)
    for x, y, s in ((780, 470, 0.8), (900, 520, 1.0), (1050, 450, 0.6)):
        boat(d, x, y, s, (240, 240, 235), (250, 250, 250))
    return img


def saltmarsh_brine(rng):
    img = vgradient(
        (W, H),
        [(0, (200, 210, 220)), (0.4, (245, 230, 210)), (0.42, (170, 180, 170)), (1, (100, 90, 70))],
    )
    glow(img, 200, 200, 40, (255, 240, 210), 0.6)
    clouds(img, rng, 5, (50, 220), (255, 250, 240), 90)
    waves(img, rng, 285, 380, (250, 245, 235), 60)
    d = ImageDraw.Draw(img)
    for k, col in enumerate(((110, 140, 90), (90, 125, 75), (70, 105, 60))):  # marsh bands
        fill_below(d, ridge(rng, 330 + k * 60, 14, 3), col)
    marsh = Image.new("L", (W, H), 0)
    md = ImageDraw.Draw(marsh)
    for _ in range(600):  # grass strokes
        x, y = rng.uniform(0, W), rng.uniform(340, 520)
        md.line((x, y, x + rng.uniform(-4, 4), y - rng.uniform(6, 20)), fill=90, width=2)
    img.paste(
        Image.new("RGB", (W, H), (150, 170, 100)),
        (0, 0),
        marsh.filter(ImageFilter.GaussianBlur(0.8)),
    )
    d = ImageDraw.Draw(img)
    fill_below(d, [(x, 540 + 20 * math.sin(x / 300)) for x in range(0, W + 10, 10)], (110, 92, 72))
    for x, y, s, c in (
        (380, 570, 1.5, (180, 60, 50)),
        (620, 585, 1.6, (40, 90, 140)),
        (860, 565, 1.3, (230, 200, 90)),
    ):
        boat(d, x, y, s, c)
    return img


def youth_climate_delegation(rng):
    img = vgradient(
        (W, H),
        [
            (0, (70, 50, 120)),
            (0.4, (200, 90, 140)),
            (0.6, (255, 170, 150)),
            (0.62, (120, 70, 120)),
            (1, (50, 35, 80)),
        ],
    )
    glow(img, 640, 410, 55, (255, 200, 160), 0.9)
    clouds(img, rng, 4, (70, 250), (240, 120, 150), 100)
    reflection(img, 640, 420, 675, (255, 190, 160), 45, 120)
    waves(img, rng, 420, 675, (255, 190, 170), 90, 50)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 560, 1200, 675), fill=(30, 22, 45))  # sea wall
    rng2 = random.Random(7)
    x = 170
    for _ in range(12):
        h = rng2.uniform(150, 190)
        person(d, x, 562, h, (30, 22, 45))
        x += rng2.uniform(60, 85)
    return img


def ocean_heat_report(rng):
    img = vgradient(
        (W, H),
        [(0, (250, 190, 120)), (0.45, (255, 225, 170)), (0.47, (40, 100, 140)), (1, (15, 55, 90))],
    )
    glow(img, 900, 250, 60, (255, 210, 140), 0.9)
    clouds(img, rng, 4, (40, 200), (255, 230, 200), 90)
    reflection(img, 900, 318, 675, (255, 200, 140), 55, 110)
    waves(img, rng, 318, 675, (255, 215, 170), 130, 60)
    d = ImageDraw.Draw(img)
    # a moored research buoy with its mast and sensor, and a skiff beside it
    d.polygon([(300, 470), (330, 400), (430, 400), (460, 470)], fill=(230, 180, 40))
    d.rectangle((372, 250, 388, 400), fill=(60, 60, 70))
    d.rectangle((350, 240, 410, 262), fill=(210, 60, 40))
    d.ellipse((366, 215, 394, 243), fill=(245, 245, 240))
    d.line((380, 470, 380, 600), fill=(40, 40, 50), width=3)
    boat(d, 620, 520, 1.2, (240, 240, 235))
    return img


SCENES = {
    "coastal-clinics-reopen.jpg": coastal_clinics_reopen,
    "clean-water-unequal-shores.jpg": clean_water_unequal_shores,
    "abidjan-inondations-relogement.jpg": abidjan_inondations,
    "safe-harbor-petition-100000.jpg": safe_harbor_petition,
    "coastal-relocation-rights-act.jpg": coastal_relocation_rights,
    "flood-season-appeal.jpg": flood_season_appeal,
    "tides-of-displacement.jpg": tides_of_displacement,
    "ridgeport-water-campaign.jpg": ridgeport_water,
    "saltmarsh-brine-ruling.jpg": saltmarsh_brine,
    "youth-climate-delegation.jpg": youth_climate_delegation,
    "ocean-heat-report.jpg": ocean_heat_report,
}


# --------------------------------------------------------------------------
# one-page PDF attachments (hand-written PDF 1.4, Helvetica, no dependencies)

PDFS = {
    "bayline-clinic-repairs.pdf": [
        "Bayline Coast clinic repair report",
        "Harbor Light Alliance - fictional sample attachment",
        "Three clinics repaired: Port Ardent, Saltgrass Point, Kellsmouth.",
        "Solar and battery backup, raised panels, rainwater filtration.",
    ],
    "clean-water-unequal-shores-report.pdf": [
        "Clean Water, Unequal Shores (2025)",
        "Harbor Light Alliance - fictional sample attachment",
        "212 coastal towns surveyed; 3,400 water sources tested.",
        "One household in five drinks water failing a basic safety test.",
    ],
    "clean-water-methodology.pdf": [
        "Clean Water, Unequal Shores: methodology annex",
        "Harbor Light Alliance - fictional sample attachment",
        "Sampling design, field test protocols and data cleaning.",
    ],
    "ocean-heat-report.pdf": [
        "Warming Waters: ocean heat along the Bayline coast (2040)",
        "Harbor Light Alliance - fictional sample attachment",
        "Embargoed: not for publication before the date on the release.",
    ],
}


def pdf_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(lines: list[str]) -> bytes:
    ops = ["BT", "/F1 20 Tf", "72 760 Td", f"({pdf_escape(lines[0])}) Tj", "/F1 12 Tf"]
    for line in lines[1:]:
        ops += ["0 -28 Td", f"({pdf_escape(line)}) Tj"]
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def main() -> None:
    MEDIA.mkdir(parents=True, exist_ok=True)
    for i, (name, scene) in enumerate(SCENES.items()):
        rng = random.Random(1000 + i)
        img = scene(rng)
        img = img.filter(ImageFilter.GaussianBlur(0.7))
        img = finish(img, rng)
        img.save(MEDIA / name, "JPEG", quality=70, optimize=True, progressive=True)
        print(f"{name}: {(MEDIA / name).stat().st_size // 1024} KB")
    for name, lines in PDFS.items():
        (MEDIA / name).write_bytes(make_pdf(lines))
        print(f"{name}: {(MEDIA / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
