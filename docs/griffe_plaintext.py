"""Griffe extension for the API reference: render nmfkit's plain-text docstrings faithfully.

nmfkit's docstrings are written for `help()`: prose paragraphs, aligned formulas and tables
indented under them, "name : description" parameter lists and the occasional NumPy-style
"Parameters / ----------" heading.  Parsed as Markdown they would lose their line structure, and
parsed as NumPy docstrings the descriptions would be taken for types.  This extension rewrites
each docstring into Markdown before mkdocstrings renders it (docstring_style: null):

* an indented run of lines (formulas, tables, code) becomes a fenced ``text`` block, verbatim;
* a "Title" line underlined with dashes becomes a bold paragraph heading;
* a paragraph whose lines start "name : description" becomes a bullet list, one item per name
  (indented continuation lines are joined to their item);
* other paragraphs are prose; ``<`` and ``*`` outside backticks are escaped so that text such as
  ``step=<float>`` shows as written.
"""
from __future__ import annotations

import re

import griffe

FIELD = re.compile(r"^([A-Za-z_*][\w*]*(?:\s*,\s*[A-Za-z_*][\w*]*)*)\s+:\s+(.*)$")
UNDERLINE = re.compile(r"^-{3,}\s*$")
CODE_SPAN = re.compile(r"(`+[^`]*`+)")


def _escape(text: str) -> str:
    """Escape Markdown-active characters outside code spans."""
    parts = CODE_SPAN.split(text)
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace("*", r"\*")
    return "".join(parts)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def to_markdown(text: str) -> str:
    lines = text.expandtabs().splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if i + 1 < len(lines) and UNDERLINE.match(lines[i + 1]) and _indent(line) == 0:
            out += [f"**{_escape(line.strip())}**", ""]
            i += 2
            continue
        if _indent(line) > 0:                               # verbatim block, blank lines included
            block = []
            while i < len(lines) and (_indent(lines[i]) > 0 or not lines[i].strip()):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            base = min(_indent(b) for b in block if b.strip())
            out += ["```text", *(b[base:] for b in block), "```", ""]
            continue
        # a paragraph: unindented lines, each possibly followed by indented continuations
        para = []
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) == 0 and not (
                i + 1 < len(lines) and UNDERLINE.match(lines[i + 1])):
            head = [lines[i]]
            i += 1
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) > 0:
                head.append(lines[i])
                i += 1
            para.append(head)
        fields = [FIELD.match(p[0]) for p in para]
        if len(para) > 1 and any(fields[1:]) or (fields[0] and len(para[0]) > 1) or (
                fields[0] and len(para) == 1 and out and out[-1].startswith("**")):
            for item, match in zip(para, fields):
                rest = " ".join(x.strip() for x in item[1:])
                if match:
                    out.append(f"- `{match.group(1)}`: {_escape((match.group(2) + ' ' + rest).strip())}")
                else:
                    out.append(f"- {_escape(' '.join(x.strip() for x in item))}")
            out.append("")
        else:
            # prose whose indented continuation lines (formulas under a sentence) stay verbatim
            for item in para:
                out.append(_escape(item[0].strip()))
                if len(item) > 1:
                    base = min(_indent(x) for x in item[1:])
                    out += ["", "```text", *(x[base:] for x in item[1:]), "```", ""]
            out.append("")
    return "\n".join(out).strip() + "\n"


class PlainTextDocstrings(griffe.Extension):
    """Rewrite every docstring with `to_markdown` once the package is loaded, and drop undocumented
    instance attributes (`self.tol = tol` in `__init__`), which only repeat the signature; dataclass
    fields are kept."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        self._walk(pkg, set())

    def _walk(self, obj, seen):
        if id(obj) in seen or obj.is_alias:
            return
        seen.add(id(obj))
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
        for name, member in list(obj.members.items()):
            if member.is_alias:
                continue
            if (member.is_attribute and member.docstring is None and "instance-attribute" in member.labels
                    and "class-attribute" not in member.labels and "dataclass" not in obj.labels):
                del obj.members[name]
                continue
            self._walk(member, seen)
