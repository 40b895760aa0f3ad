"""Allocates memory until the local runner kills it (the OOM case)."""

import time

hoard = []
while True:
    hoard.append(bytearray(16 * 1024 * 1024))
    time.sleep(0.05)
