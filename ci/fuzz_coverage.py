"""What a fuzz run reached of its target's code, from `llvm-cov export`.

    python3 ci/fuzz_coverage.py coverage.json missed.txt FILE_OR_FOLDER... [!LEFT_OUT...]

Prints one line: "R/T regions (P%), F/G functions entered". Writes to
missed.txt each function of the target that was never entered (file:line,
its region count). Test code (whatever is under `#[cfg(test)]`, and the
fuzz module itself) is left out: it is not what the fuzzer aims at.
"""

import json
import re
import sys

# A string literal on one line: its braces are not the code's.
LITERAL = re.compile(r'"(?:\\.|[^"\\])*"')


def test_lines(path, cache={}):
    """The lines of `path` under a `#[cfg(test)]` item (to its closing brace)."""
    if path not in cache:
        lines = set()
        try:
            text = open(path).read().splitlines()
        except OSError:
            text = []
        i = 0
        while i < len(text):
            if text[i].strip() == "#[cfg(test)]":
                depth, opened, j = 0, False, i + 1
                while j < len(text):
                    code = LITERAL.sub('""', text[j])
                    depth += code.count("{") - code.count("}")
                    opened = opened or "{" in code
                    if (opened and depth <= 0) or (not opened and code.rstrip().endswith(";")):
                        break
                    j += 1
                lines.update(range(i + 1, j + 2))
                i = j
            i += 1
        cache[path] = lines
    return cache[path]


def main():
    coverage, missed_path, *paths = sys.argv[1:]
    targets = [p for p in paths if not p.startswith("!")]
    left_out = [p[1:] for p in paths if p.startswith("!")]
    data = json.load(open(coverage))["data"][0]

    def ours(filename):
        name = filename.split("/work/", 1)[-1]
        return (
            any(t in filename for t in targets)
            and not any(x in filename for x in left_out)
            and not (name.endswith("/tests.rs") or name.endswith("/fuzz.rs"))
        )

    def is_test(function, files, first):
        return first[0] in test_lines(files[first[5]])

    regions = {}  # (file, start line, start col, end line, end col) -> reached
    functions = {}  # (file, line) -> (entered, regions)
    for function in data["functions"]:
        files = function["filenames"]
        code = [r for r in function["regions"] if r[7] == 0]  # code regions
        if not code or not ours(files[code[0][5]]) or is_test(function, files, code[0]):
            continue
        for r in code:
            key = (files[r[5]], r[0], r[1], r[2], r[3])
            regions[key] = regions.get(key, False) or r[4] > 0
        # A generic function appears once per instance: entered if any was.
        start = (files[code[0][5]], code[0][0])
        entered, _ = functions.get(start, (False, 0))
        functions[start] = (entered or function["count"] > 0, len(code))

    reached = sum(regions.values())
    entered = sum(1 for e, _ in functions.values() if e)
    with open(missed_path, "w") as missed:
        for (file, line), (e, n) in sorted(functions.items()):
            if not e:
                short = file.split("/harness/src/", 1)[-1]
                missed.write(f"{short}:{line} ({n} regions)\n")
    print(
        f"{reached}/{len(regions)} regions ({100 * reached / max(len(regions), 1):.1f}%), "
        f"{entered}/{len(functions)} functions entered"
    )


main()
