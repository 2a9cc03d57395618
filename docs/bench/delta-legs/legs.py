"""Each leg of an `olt rollout` report: its ONUs, its span, its data phase (Download sections,
first to last ONU) and what follows it (End to committed: for a delta, the rebuild while End
is answered "device busy"). Then the campaign's span, the data phases' sum, and what running
the legs in turn costs over overlapping each leg's after-data time with the next leg."""
import json
import sys
from collections import defaultdict

r = json.load(open(sys.argv[1]))
package = {o["id"]: o["package"] for p in r["pons"] for o in p["packages"]["onus"]}
legs = defaultdict(list)
for o in r["onus"]:
    legs[package.get(o["id"], "full")].append(o)
rows = []
for name, onus in legs.items():
    ph = [p for o in onus for p in o["timeline"] if p["phase"] not in ("discover", "inspect")]
    dl = [p for p in ph if p["phase"] == "download"]
    start = min(p["start_s"] for p in ph)
    d0 = min(p["start_s"] for p in dl)
    d1 = max(p["start_s"] + p["duration_s"] for p in dl)
    end = max(p["start_s"] + p["duration_s"] for p in ph)
    busy = [p for p in ph if p["phase"] == "busy"]
    b = max(p["start_s"] + p["duration_s"] for p in busy) - min(p["start_s"] for p in busy) if busy else 0
    rows.append((start, name, len(onus), d0, d1, end, b))
rows.sort()
for start, name, n, d0, d1, end, b in rows:
    print(f"  {name:16} {n:3} ONUs: leg {start:5.2f} to {end:5.2f} s ({end - start:4.2f} s); "
          f"data {d1 - d0:4.2f} s; after it {end - d1:4.2f} s (End busy {b:4.2f} s)")
span = rows[-1][5] - rows[0][0]
data = sum(x[4] - x[3] for x in rows)
after = [x[5] - x[4] for x in rows]
print(f"  campaign {span:.2f} s from the first leg's start; data phases {data:.2f} s in all; "
      f"the after-data time of all legs but the last: {sum(after[:-1]):.2f} s")
