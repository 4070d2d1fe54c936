"""docs/hostile_inputs.md: at least 30 rows, and every test it names exists.

Usage: check_hostile_inputs_doc.py DOC TEST_BINARY...
Each binary is asked for --gtest_list_tests; a name in the doc's last column
(Suite.Test, with a parameterized prefix such as EachCrashPoint/ and a suffix
such as /node_upload allowed) must be one of them.
"""
import re
import subprocess
import sys


def listed_tests(binary):
    out = subprocess.run([binary, "--gtest_list_tests"], check=True, capture_output=True,
                         text=True).stdout
    names, suite = set(), None
    for line in out.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            suite = line.split("#")[0].strip().rstrip(".")
        else:
            names.add(f"{suite}.{line.split('#')[0].strip()}")
    return names


def main():
    doc, binaries = sys.argv[1], sys.argv[2:]
    known = set()
    for b in binaries:
        known |= listed_tests(b)
    rows = [l for l in open(doc, encoding="utf-8") if re.match(r"^\| \d+ \|", l)]
    problems = []
    if len(rows) < 30:
        problems.append(f"{doc}: {len(rows)} rows, at least 30 expected")
    for row in rows:
        number = row.split("|")[1].strip()
        tests_cell = row.rstrip().rstrip("|").split(" | ")[-1]
        # "file.cc:Suite.Test, Other.Test" or "file.cc:Suite.Test (note); file2.cc:..."
        names = []
        for part in re.sub(r"\([^)]*\)", "", tests_cell).split(";"):
            if ":" not in part:
                continue
            suite_default = None
            for item in part.split(":", 1)[1].split(","):
                item = item.strip()
                if not item:
                    continue
                if "." in item:
                    suite_default = item.split(".")[0] if "/" not in item else item.rsplit(".", 1)[0]
                    names.append(item)
                elif suite_default:
                    names.append(f"{suite_default}.{item}")
        if not names:
            problems.append(f"{doc}: row {number} names no test")
        for name in names:
            if name not in known:
                problems.append(f"{doc}: row {number}: no test {name}")
    for p in problems:
        print(p)
    print(f"{len(rows)} rows checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
