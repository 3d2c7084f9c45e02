"""Counts how many probes of a JSON-lines file `relent classify --jsonl` reads as each
probe's `want`, and lists the others.

    python3 docs/probes/agree.py docs/probes/hermes_phrase_probes.jsonl [path/to/relent]
"""
import json
import subprocess
import sys

path = sys.argv[1]
relent = sys.argv[2] if len(sys.argv) > 2 else "target/release/relent"
probes = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
keys = ("provider", "status", "headers", "body", "transport_error")
stdin = "".join(json.dumps({k: p[k] for k in keys if k in p}) + "\n" for p in probes)
out = subprocess.run([relent, "classify", "--jsonl"], input=stdin, capture_output=True,
                     text=True, check=False).stdout.splitlines()
if len(out) != len(probes):
    sys.exit(f"relent answered {len(out)} lines for {len(probes)} probes")
agree = 0
for probe, line in zip(probes, out):
    got = json.loads(line).get("reason")
    if got == probe["want"]:
        agree += 1
    else:
        print(f"{probe['id']}: status {probe.get('status')} want {probe['want']} got {got}")
print(f"{agree} of {len(probes)} agree")
