"""Checks a report page and its screenshot, for tests/report.rs:

    python3 tests/report_check.py REPORT.html SCREENSHOT.png BEST_HYPER_ID

The page must parse as XML (so its HTML is well-formed and each inline SVG too), hold
its charts (the search, three importances, three contours, the timeline) and no
reference to the network, and name the best trial; the
screenshot must be a PNG that is not blank (many distinct byte values once inflated).
"""

import struct
import sys
import xml.dom.minidom
import zlib


def png_distinct_bytes(png_path):
    """How many distinct byte values a PNG's pixels hold once inflated: a handful for a
    blank page, hundreds for one with text and charts."""
    data = open(png_path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))


def main():
    html_path, png_path, best = sys.argv[1:4]
    text = open(html_path, encoding="utf-8").read()
    doc = xml.dom.minidom.parseString(text)
    svgs = doc.getElementsByTagName("svg")
    # 5 charts of the search, 3 importance bars, 3 contours and the timeline.
    assert len(svgs) >= 12, f"{len(svgs)} charts"
    for svg in svgs:
        xml.dom.minidom.parseString(svg.toxml())
    for needle in ("http://", "https://", "<script", "<link", "@import"):
        # The SVG namespace is a name, not a fetch.
        rest = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert needle not in rest, f"the page refers to {needle}"
    assert best in text, f"best trial {best} not named"
    for heading in ("Parameter importance", "The score over each pair of parameters", "Timeline"):
        assert heading in text, f"no section {heading!r}"
    for pair in ("gamma x C", "gamma x epsilon", "C x epsilon"):
        assert pair in text, f"no contour of {pair}"
    assert text.count(" %</td>") == 3, "not three importances"

    distinct = png_distinct_bytes(png_path)
    assert distinct > 50, f"the screenshot looks blank ({distinct} distinct byte values)"
    print(f"{len(svgs)} charts, best trial named, screenshot with {distinct} distinct byte values")


if __name__ == "__main__":
    main()
