#!/usr/bin/env python3
"""Lists the functions of C++ and CUDA sources that are longer than a limit, counted from
the first line of the signature to the closing brace (lambdas and local classes count
with the function around them; class and namespace bodies are not functions).

    python3 scripts/function-sizes.py [--limit N] FILE...      (default limit 80)

A brace-matching reader, not a compiler: it strips comments, strings and character
literals, then takes a '{' as a function body when it follows a ')' (with qualifiers,
a trailing return type or a constructor's initializer list between) outside any other
function. Exit 1 when a function is over the limit."""
import re
import sys


def strip(src):
    src = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), src, flags=re.S)
    src = re.sub(r"//[^\n]*", "", src)
    src = re.sub(r'R"(\w*)\((.*?)\)\1"', lambda m: re.sub(r"[^\n]", " ", m.group(0)), src, flags=re.S)
    src = re.sub(r'"(\\.|[^"\\\n])*"', '""', src)
    src = re.sub(r"'(\\.|[^'\\\n])+'", "' '", src)
    src = re.sub(r"^[ \t]*#[^\n]*(\\\n[^\n]*)*", lambda m: re.sub(r"[^\n]", " ", m.group(0)), src,
                 flags=re.M)  # preprocessor lines, newlines kept
    return src


def functions(src):
    """(first line, last line) of every outermost function body."""
    out, stack = [], []
    line, i = 1, 0
    for i, ch in enumerate(src):
        if ch == "\n":
            line += 1
        elif ch == "{":
            inside_function = any(kind == "fn" for kind, _ in stack)
            head = src[max(0, i - 400):i]
            stmt = re.split(r"[;{}]", head)[-1]
            is_function = (not inside_function and re.search(r"\)", stmt)
                           and not re.search(r"\b(namespace|class|struct|union|enum)\b[^()]*$", stmt)
                           and not re.search(r"=\s*$", stmt.strip()[-1:] if stmt.strip() else ""))
            if is_function:
                start = src.count("\n", 0, i - len(stmt.lstrip())) + 1
                stack.append(("fn", start))
            else:
                stack.append(("other", line))
        elif ch == "}" and stack:
            kind, start = stack.pop()
            if kind == "fn" and not any(k == "fn" for k, _ in stack):
                out.append((start, line))
    return out


def main(argv):
    limit = 80
    if len(argv) > 1 and argv[0] == "--limit":
        limit, argv = int(argv[1]), argv[2:]
    long_ones = 0
    for path in argv:
        with open(path, errors="replace") as f:
            src = strip(f.read())
        for start, end in functions(src):
            if end - start + 1 > limit:
                print(f"{path}:{start}: function of {end - start + 1} lines (more than {limit})")
                long_ones += 1
    return 1 if long_ones else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
