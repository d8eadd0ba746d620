"""Checks the user guide (docs/guide) against the program it documents.

Usage: check_guide.py AAM_EXECUTABLE GUIDE_SRC_DIR

- every relative link between chapters points at an existing file;
- every `aam <command> --flag …` line of a shell block names a real command and only flags
  that `aam <command> --help` lists, so the guide cannot drift from the CLI.
Exits 1 listing every problem.
"""

import re
import subprocess
import sys
from pathlib import Path


def shell_lines(text):
    """The commands of the ```sh blocks, continuation lines joined."""
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                yield line


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
            if words[0] != "aam" or len(words) < 2:
                continue
            command = words[1]
            if command not in helps:
                done = subprocess.run([aam, command, "--help"], capture_output=True, text=True)
                helps[command] = done.stdout if done.returncode == 0 else None
            if helps[command] is None:
                problems.append(f"{page.name}: `aam {command}` is not a command")
                continue
            for flag in re.findall(r"(?<!\S)(--[a-z][a-z0-9-]*)", line):
                if not re.search(re.escape(flag) + r"\b", helps[command]):
                    problems.append(f"{page.name}: `aam {command}` has no option {flag}")
            checked += 1
    for p in problems:
        print(p)
    print(f"guide: {checked} aam command lines checked against --help, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
