"""Writes src/exp_table.rs, the table of the exact engine's
vector exp.

Entry k of 128 splits 2^(k/128) as H (the nearest double) times 1 + T (T the nearest
double to the relative rest): `tab[2k]` holds T's bits, `tab[2k + 1]` H's bits less
k << 45, so that adding the integer part of the scaled argument, shifted into the
exponent field, gives the scale directly. These are the values glibc's exp uses (the
engine checks its results against the C library's exp before using them).

    python3 crates/svr-exact/make_exp_table.py
"""

import decimal
import pathlib
import struct

N = 128


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def main() -> None:
    decimal.getcontext().prec = 80
    two = decimal.Decimal(2)
    words = []
    for k in range(N):
        exact = two ** (decimal.Decimal(k) / N)
        h = float(exact)  # correctly rounded
        t = float((exact - decimal.Decimal(h)) / decimal.Decimal(h))
        words.append(bits(t))
        words.append((bits(h) - (k << 45)) % 2**64)
    lines = ["// Made by make_exp_table.py (beside Cargo.toml); do not edit.", ""]
    lines.append("/// 2^(k/128) as (relative tail, scale bits less k << 45), k = 0..128.")
    lines.append("#[rustfmt::skip]")
    lines.append(f"pub(super) static TABLE: [u64; {2 * N}] = [")
    for k in range(0, 2 * N, 2):
        lines.append(f"    0x{words[k]:016x}, 0x{words[k + 1]:016x},")
    lines.append("];")
    out = pathlib.Path(__file__).resolve().parent / "src/exp_table.rs"
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
