"""Bounded YAML/JSON loading with libyaml's C loader.

Input reaches auditwarden from people and from the network, so every load is bounded:

* **Nesting depth.**  libyaml's composer recurses in C: ``[`` nested 100,000 deep crashes
  the process with a segmentation fault (measured with PyYAML 6.0.3; the libyaml bundled
  from 6.0.4 on refuses flow nesting past its own limit, which we report the same way, but
  block nesting and older builds are not covered by that).  Before the real
  parse, a cheap upper bound on the depth is computed from the text; only when that bound
  is high is the event stream (which libyaml produces iteratively, without recursion)
  scanned to measure the true depth.  Documents nested deeper than :data:`MAX_DEPTH` are
  refused.
* **Alias expansion** ("billion laughs").  The C loader shares aliased nodes, so loading
  is cheap, but any walk over the result would expand them.  After loading, the documents
  are walked once, counting every visit (shared nodes count each time they are reached);
  more than :data:`MAX_NODES` visits is refused — the same idea as go-yaml's
  "excessive aliasing" guard that kube-apiserver's own YAML decoder applies.
* **Size.**  Callers pass at most :data:`MAX_TEXT_BYTES`.

Scalars resolve as in YAML 1.1 (what both PyYAML and kube-apiserver's sigs.k8s.io/yaml
use), except that timestamps stay strings: Kubernetes converts YAML to JSON, where a date
is just a string.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

try:  # libyaml's C implementation; the pure-Python one is a slow fallback
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_DEPTH = 100
MAX_NODES = 1_000_000
MAX_TEXT_BYTES = 8 * 1024 * 1024
# Below this bound the C composer's recursion is harmless (measured: 20,000 levels load in a
# thread with the default 8 MiB stack, 30,000 crash), so the exact event scan is skipped.
_CHEAP_DEPTH_BOUND = 5_000


class DocumentError(ValueError):
    """The text is not YAML/JSON we are willing to load; ``str()`` is the reason."""


class _Loader(_BaseLoader):
    """Safe C loader whose timestamps stay strings (as after Kubernetes' YAML→JSON step)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


def _depth_bound(text: str) -> int:
    """A cheap upper bound on the nesting depth of ``text``.

    Flow collections nest at most once per ``[``/``{``; block collections nest at most
    once per indentation column or indicator on a line, so twice the longest line bounds
    them.
    """
    longest = max(map(len, text.splitlines()), default=0)
    return text.count("[") + text.count("{") + 2 * longest + 2


def _exact_depth(text: str) -> int:
    depth = deepest = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > deepest:
                    deepest = depth
                    if deepest > MAX_DEPTH:
                        return deepest
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return deepest  # the real parse reports the error (libyaml's depth limit included)
    return deepest


def _is_libyaml_depth_limit(exc: BaseException) -> bool:
    """libyaml's own nesting guard (the libyaml bundled from PyYAML 6.0.4 on) fired.

    Its scanner refuses flow collections nested deeper than its limit with "exceeded maximum
    nesting depth", before the parser has emitted the events the depth scan counts, so the
    scan sees fewer than :data:`MAX_DEPTH` levels and the real parse meets the same error
    (safely: libyaml's limit is far below the depth at which its composer's recursion
    crashes).  It means the same thing as ours, so it gets our reason.
    """
    return "maximum nesting depth" in str(exc)


def _check_expansion(docs: list[Any]) -> None:
    """Walk the loaded documents once, counting every visit (aliases count each time)."""
    budget = MAX_NODES - len(docs)
    stack: list[tuple[Any, int]] = [(d, 1) for d in docs if type(d) is dict or type(d) is list]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise DocumentError(f"document is nested deeper than {MAX_DEPTH} levels")
        values = node.values() if type(node) is dict else node
        budget -= 2 * len(node) if type(node) is dict else len(node)
        if budget < 0:
            raise DocumentError(
                f"document expands to more than {MAX_NODES} nodes (excessive YAML aliasing?)"
            )
        deeper = depth + 1
        stack.extend((v, deeper) for v in values if type(v) is dict or type(v) is list)


def load_all(text: str | bytes) -> list[Any]:
    """Load every document of a YAML (or JSON) stream, refusing anything unbounded.

    Empty documents (``---`` alone) come back as ``None`` entries.  Raises
    :class:`DocumentError` with a one-line reason.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_TEXT_BYTES:
            raise DocumentError(f"document is larger than {MAX_TEXT_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"document is not valid UTF-8 (byte {exc.start})") from None
    if len(text) > MAX_TEXT_BYTES:
        raise DocumentError(f"document is larger than {MAX_TEXT_BYTES} characters")
    if _depth_bound(text) > _CHEAP_DEPTH_BOUND and _exact_depth(text) > MAX_DEPTH:
        raise DocumentError(f"document is nested deeper than {MAX_DEPTH} levels")
    try:
        docs = list(_iter_docs(text))
    except yaml.YAMLError as exc:
        if _is_libyaml_depth_limit(exc):
            raise DocumentError(f"document is nested deeper than {MAX_DEPTH} levels") from None
        raise DocumentError(f"invalid YAML: {_one_line(exc)}") from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. unhashable keys
        raise DocumentError(f"invalid YAML: {_one_line(exc)}") from None
    # The walk counts expansions and measures depth.  Without an anchor there is no alias,
    # and below MAX_DEPTH on the cheap bound the depth cannot exceed the limit either.
    if "&" in text or _depth_bound(text) > MAX_DEPTH:
        _check_expansion(docs)
    return docs


def load_one(text: str | bytes) -> Any:
    """Load a stream that must hold exactly one document (extra empty ones are ignored)."""
    docs = [d for d in load_all(text) if d is not None]
    if len(docs) > 1:
        raise DocumentError(f"expected one YAML document, found {len(docs)}")
    return docs[0] if docs else None


def _iter_docs(text: str) -> Iterator[Any]:
    loader = _Loader(text)
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            yield loader.get_data()
    finally:
        loader.dispose()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
