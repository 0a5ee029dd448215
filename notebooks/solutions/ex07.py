"""Notebook 7: sign bits packed 8 per byte, and the XNOR-popcount dot product (DESIGN §7.2, §7.3)."""
import numpy as np


def pack_bits(x):
    """bit i = [x_i >= 0], element i in bit (i % 8) of byte i // 8 (little bit order), padding bits 0."""
    return np.packbits(x >= 0, bitorder="little")


def xnor_dot(a_bytes, w_bytes, n):
    """a . w for two +-1 vectors of length n from their packed bits: n - 2 popcount(a XOR w)."""
    differ = int(np.bitwise_count(np.bitwise_xor(a_bytes, w_bytes)).sum())   # a Python int: no unsigned wrap-around
    return n - 2 * differ
