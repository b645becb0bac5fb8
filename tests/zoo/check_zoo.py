#!/usr/bin/env python3
"""Evaluates every model of data/pretrained/zoo.json on its full test set and checks the
recorded accuracy exactly (evaluation is deterministic: the same correct count, image for
image). With PREDICT, each exported model (.lbq) also runs through the low-bit inference path
(`predict FILE --compare --json`, docs/inference.md), whose predictions must equal the
fake-quantized evaluation's on every test image. ctest runs it as `zoo_accuracy`
(tests/CMakeLists.txt).

    python3 tests/zoo/check_zoo.py TRAIN_CIFAR REPO_ROOT [PREDICT]

Each entry: {"file": path under the repo, "args": extra train_cifar arguments, "images": N,
"correct": K}. Exits 77 (ctest: "Skipped", with the reason printed) when the data sets are not
where train_cifar looks for them without arguments (../shared/data next to the repo, or
$LOWBIT_DATA; data/README.md), 1 on any mismatch or error, 0 when every model matches.
"""
import json
import os
import subprocess
import sys


def main():
    exe, root = sys.argv[1], os.path.abspath(sys.argv[2])
    predict = sys.argv[3] if len(sys.argv) > 3 else None
    zoo = json.load(open(os.path.join(root, "data", "pretrained", "zoo.json")))
    shared = os.path.join(root, "..", "shared", "data")
    if not os.path.isdir(shared) and not os.environ.get("LOWBIT_DATA"):
        print(f"SKIPPED: no data sets at {shared} and LOWBIT_DATA is not set; the zoo check evaluates on the real test sets")
        sys.exit(77)
    failed = 0
    for entry in zoo["models"]:
        path = os.path.join(root, entry["file"])
        cmd = [exe, "--eval", path, "--json"] + entry.get("args", [])
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
        if run.returncode != 0:
            print(f"FAIL {entry['file']}: exit {run.returncode}: {run.stdout.strip()} {run.stderr.strip()}")
            failed += 1
            continue
        result = json.loads(run.stdout)
        correct = round(result["accuracy"] * result["images"])
        ok = result["images"] == entry["images"] and correct == entry["correct"]
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {entry['file']}: {correct} of {result['images']} correct "
              f"({100 * result['accuracy']:.2f}%), recorded {entry['correct']} of {entry['images']}")
        if predict and path.endswith(".lbq"):
            run = subprocess.run([predict, path, "--compare", "--json"] + entry.get("args", []),
                                 capture_output=True, text=True, cwd=root)
            if run.returncode != 0:
                print(f"FAIL {entry['file']}: predict exit {run.returncode}: {run.stderr.strip()}")
                failed += 1
                continue
            p = json.loads(run.stdout)
            differ = p["fake_quant"]["predictions_differ"]
            kernels = sorted({layer["kernel"] for layer in p["layers"]})
            ok = differ == 0 and round(p["accuracy"] * p["images"]) == entry["correct"]
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {entry['file']}: inference path ({', '.join(kernels)}): "
                  f"{differ} of {p['images']} predictions differ from the fake-quantized evaluation, "
                  f"{100 * p['accuracy']:.2f}%")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
