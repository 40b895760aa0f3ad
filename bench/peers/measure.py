"""Run a Python script and print its peak RSS (VmHWM) as JSON on stderr's last line.

The kernel's ru_maxrss for a child also counts the parent's memory at fork time, so
the benchmark asks each process for its own VmHWM instead. The script's exit status
is kept (the AWS CLI ends with sys.exit).

Usage: measure.py SCRIPT [ARGS…]
"""

import json
import runpy
import sys

script = sys.argv[1]
sys.argv = sys.argv[1:]
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exit:
    code = exit.code
with open("/proc/self/status") as status:
    kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"peak_rss_bytes": kb * 1024}), file=sys.stderr)
sys.exit(code)
