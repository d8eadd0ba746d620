"""Checks the user guide (docs/guide) against the program it documents.

Usage: check_guide.py AAM_EXECUTABLE GUIDE_SRC_DIR

- every relative link between chapters points at an existing file;
- every `aam <command> --flag …` line of a shell block names a real command and only flags
  that `aam <command> --help` lists, so the guide cannot drift from the CLI.
Exits 1 listing every problem. `check_guide.py --self-test` checks the flag matching.
"""

import re
import subprocess
import sys
from pathlib import Path


LAUNCHERS = ("mpirun", "mpiexec", "srun")


def shell_lines(text):
    """The commands of the ```sh blocks, continuation lines joined."""
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                yield line


def help_flags(help_text):
    """The long options a `--help` text lists, whole."""
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)(?![\w-])", help_text))


def unknown_flags(line, help_text):
    """The flags of a command line that its `--help` does not list, compared whole
    (`--max` is not `--max-bp`)."""
    known = help_flags(help_text)
    return [f for f in re.findall(r"(?<!\S)(--[a-z][a-z0-9-]*)", line) if f not in known]


def main():
    aam, src = sys.argv[1], Path(sys.argv[2])
    problems, helps, checked = [], {}, 0
    for page in sorted(src.glob("*.md")):
        text = page.read_text()
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
            if not (page.parent / target).is_file():
                problems.append(f"{page.name}: link to missing {target}")
        for line in shell_lines(text):
            words = line.split()
            # `mpirun -np 2 aam train …`, `srun aam train …`: the aam part is checked.
            if words[0] in LAUNCHERS and "aam" in words:
                words = words[words.index("aam"):]
                line = " ".join(words)
            if words[0] != "aam" or len(words) < 2:
                continue
            command = words[1]
            if command not in helps:
                done = subprocess.run([aam, command, "--help"], capture_output=True, text=True)
                helps[command] = done.stdout if done.returncode == 0 else None
            if helps[command] is None:
                problems.append(f"{page.name}: `aam {command}` is not a command")
                continue
            for flag in unknown_flags(line, helps[command]):
                problems.append(f"{page.name}: `aam {command}` has no option {flag}")
            checked += 1
    for p in problems:
        print(p)
    print(f"guide: {checked} aam command lines checked against --help, {len(problems)} problems")
    sys.exit(1 if problems else 0)


def self_test():
    """A prefix of a real flag is not that flag."""
    help_text = "  --max-bp <MAX_BP>\n      --token-limit <N>  [default: 1024]\n  -h, --help"
    line = "aam train --max 150 --token-limit 64 --max-bp 150 --token 3"
    assert unknown_flags(line, help_text) == ["--max", "--token"], unknown_flags(line, help_text)
    print("check_guide self-test: ok")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
    else:
        main()
