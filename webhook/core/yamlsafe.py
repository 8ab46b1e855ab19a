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

Scalars resolve as go-yaml v2 resolves them (``webhook/core/goyaml.py``), and every document
comes out as ``sigs.k8s.io/yaml`` converts it to JSON (string keys, timestamps as strings,
``!!binary`` decoded, go-yaml's merge order, NaN/Inf values refused): that is how kube-apiserver,
the kubelet, kubeadm and kubectl read YAML.  The parser itself is libyaml's C parser, of which
go-yaml v2 is a Go port.
"""

from __future__ import annotations

import base64
import codecs
import json
import math
import re
from collections.abc import Iterator
from typing import Any

import yaml

from webhook.core import goyaml, objectmeta

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
    """libyaml's parser with go-yaml v2's scalar resolution and sigs.k8s.io/yaml's JSON view.

    The C composer asks :meth:`resolve` for the tag of every untagged node; plain scalars
    get go-yaml's tag (:func:`goyaml.resolve`), quoted ones are strings.  Every node is then
    built by :func:`_construct` as go-yaml decodes into ``interface{}`` and
    ``sigs.k8s.io/yaml`` converts to JSON: timestamps and ``!!binary`` become strings,
    explicit tags are checked, unknown tags are ignored, ``<<`` merges as go-yaml merges (in
    key order: a later key wins, whether merged or written), keys become JSON strings, and a
    NaN or infinite value is refused as JSON cannot hold it.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return goyaml.STR_TAG
            if value and value[0] not in goyaml.HINT_CHARS:
                return goyaml.MERGE_TAG if value == "<<" else goyaml.STR_TAG
            return goyaml.resolve("", value)[0]
        return _SEQ_TAG if kind is yaml.SequenceNode else _MAP_TAG


class _PyLoader(yaml.SafeLoader):
    """The same, on PyYAML's Python parser, for two rare kinds of tag that libyaml reads differently.

    libyaml reports ``! yes`` exactly like a plain ``yes`` to the composer (both "plain
    implicit"), but go-yaml keeps the ``!`` and so reads a string; only the Python composer
    lets us see the tag.  And libyaml 0.2.5 ends a tag at ``,``/``[``/``]`` in flow context,
    while go-yaml (a port of an older libyaml) and PyYAML's Python scanner keep them in the
    tag: ``[!!str, y]`` is one element, ``"y"``, to kube-apiserver.
    """

    resolve = _Loader.resolve

    def compose_scalar_node(self, anchor: Any) -> yaml.ScalarNode:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        node: yaml.ScalarNode = super().compose_scalar_node(anchor)
        if event.tag == "!":
            node.tag = goyaml.STR_TAG
        return node


# A "!" tag standing alone (followed by a space, a flow indicator or the line's end), or a tag
# with a flow indicator in it.
_ODD_TAG = re.compile(r"(?:^|[\s\[\]{},])!(?=[\s,\]}]|$)|![^\s]*?[,\[\]]", re.MULTILINE)


_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"


def _go_string_bytes(data: bytes) -> str:
    """Bytes as Go's encoding/json writes a string holding them: each invalid byte is U+FFFD."""
    return data.decode("utf-8", errors="auditwarden-go-replace")


def _go_replace(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeDecodeError)
    return "\ufffd", exc.start + 1


codecs.register_error("auditwarden-go-replace", _go_replace)


def _scalar(node: yaml.ScalarNode) -> Any:
    """decode.go ``scalar`` into ``interface{}``."""
    tag, value = node.tag, node.value
    if tag == goyaml.STR_TAG:
        return value
    if tag == goyaml.BINARY_TAG:
        try:
            raw = base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
        except ValueError:
            raise goyaml.GoYAMLError("yaml: !!binary value contains invalid base64 data") from None
        return _go_string_bytes(raw)
    return goyaml.resolve(tag, value)[1]


def _key(node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise goyaml.GoYAMLError("yaml: invalid map key: a collection")
    return goyaml.json_key(_scalar(node))


_AnyLoader = _Loader | _PyLoader


def _construct(loader: _AnyLoader, node: yaml.Node) -> Any:
    if node.tag == goyaml.STR_TAG and type(node) is yaml.ScalarNode:
        return node.value
    if isinstance(node, yaml.MappingNode):
        return _mapping(loader, node)
    if isinstance(node, yaml.SequenceNode):
        return _sequence(loader, node)
    assert isinstance(node, yaml.ScalarNode)
    value = _scalar(node)
    if type(value) is float and (value != value or value in (math.inf, -math.inf)):
        shown = "NaN" if value != value else ("+Inf" if value > 0 else "-Inf")
        raise goyaml.GoYAMLError(f"error converting YAML to JSON: json: unsupported value: {shown}")
    return value


def _sequence(loader: _AnyLoader, node: yaml.SequenceNode) -> Iterator[list[Any]]:
    data: list[Any] = []
    yield data
    data.extend(loader.construct_object(child) for child in node.value)


def _mapping(loader: _AnyLoader, node: yaml.MappingNode) -> Iterator[dict[str, Any]]:
    data: dict[str, Any] = {}
    yield data
    _fill(loader, node, data, set())


def _fill(loader: _AnyLoader, node: yaml.MappingNode, out: dict[str, Any], merging: set[int]) -> None:
    """decode.go ``mapping``: pairs in order, ``<<`` merged in place (``merge``)."""
    for key_node, value_node in node.value:
        if key_node.tag == goyaml.MERGE_TAG and key_node.value == "<<" and isinstance(key_node, yaml.ScalarNode):
            _merge(loader, value_node, out, merging)
            continue
        key = _key(key_node)
        out[key] = loader.construct_object(value_node)


def _merge(loader: _AnyLoader, node: yaml.Node, out: dict[str, Any], merging: set[int]) -> None:
    if isinstance(node, yaml.SequenceNode):
        if not all(isinstance(child, yaml.MappingNode) for child in node.value):
            raise goyaml.GoYAMLError("yaml: map merge requires map or sequence of maps as the value")
        children = list(reversed(node.value))  # earlier maps take precedence
    elif isinstance(node, yaml.MappingNode):
        children = [node]
    else:
        raise goyaml.GoYAMLError("yaml: map merge requires map or sequence of maps as the value")
    for child in children:
        if id(child) in merging:
            raise goyaml.GoYAMLError("yaml: anchor value contains itself")
        merging.add(id(child))
        _fill(loader, child, out, merging)
        merging.discard(id(child))


_Loader.yaml_constructors = _PyLoader.yaml_constructors = {None: _construct}
_Loader.yaml_multi_constructors = _PyLoader.yaml_multi_constructors = {}


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
    return _load(text, first_only=False)


def load_first(text: str | bytes) -> Any:
    """The first document only, as ``sigs.k8s.io/yaml.YAMLToJSON`` reads a file.

    That is how kube-apiserver reads ``--audit-policy-file`` and the kubelet a static Pod
    manifest: a policy in a second document is never seen, and an empty first document is
    ``null``.
    """
    docs = _load(text, first_only=True)
    return docs[0] if docs else None


def decode_like_apiserver(text: str | bytes) -> Any:
    """A file as kube-apiserver's universal decoder reads it (e.g. ``--audit-policy-file``).

    ``k8s.io/apimachinery/pkg/runtime/serializer/json`` ``RecognizesData``: a text whose first
    non-space character is ``{`` is JSON (``utilyaml.IsJSONBuffer``) and is decoded as JSON
    only — flow-style YAML such as ``{apiVersion: audit.k8s.io/v1}`` is refused there;
    anything else is YAML, first document only (:func:`load_first`).
    """
    text = _text(text)
    if not is_json_buffer(text):
        return load_first(text)
    try:
        return json.loads(text, parse_constant=_no_json_constant, parse_float=objectmeta.JSONFloat)
    except (ValueError, RecursionError) as exc:
        raise DocumentError(
            f"couldn't get version/kind; json parse error: {_one_line(exc)} (a text that starts with "
            "'{' is read as JSON, not YAML)"
        ) from None


def _text(text: str | bytes) -> str:
    if isinstance(text, bytes):
        if len(text) > MAX_TEXT_BYTES:
            raise DocumentError(f"document is larger than {MAX_TEXT_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"document is not valid UTF-8 (byte {exc.start})") from None
    if len(text) > MAX_TEXT_BYTES:
        raise DocumentError(f"document is larger than {MAX_TEXT_BYTES} characters")
    return text


def load_file(text: str | bytes) -> list[Any]:
    """The documents of a file as Kubernetes' readers see them.

    A text that starts with ``{`` is one JSON document (:func:`decode_like_apiserver`;
    kubectl's YAMLOrJSONDecoder sniffs the same way), anything else every YAML document
    (:func:`load_all`).  Whoever reads only the first document (kube-apiserver's policy file,
    the kubelet's static Pod) is told apart by the caller.
    """
    text = _text(text)
    return [decode_like_apiserver(text)] if is_json_buffer(text) else load_all(text)


def is_json_buffer(text: str) -> bool:
    """apimachinery util/yaml ``IsJSONBuffer``: ``{`` after Go's ``unicode.IsSpace`` characters."""
    for ch in text:
        if ch == "{":
            return True
        if not (ch in _GO_LATIN1_SPACE or (ch > "\xff" and ch.isspace())):
            return False
    return False


_GO_LATIN1_SPACE = frozenset("\t\n\v\f\r \x85\xa0")


def _no_json_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _load(text: str | bytes, first_only: bool) -> list[Any]:
    text = _text(text)
    if _depth_bound(text) > _CHEAP_DEPTH_BOUND and _exact_depth(text) > MAX_DEPTH:
        raise DocumentError(f"document is nested deeper than {MAX_DEPTH} levels")
    try:
        docs = list(_iter_docs(text, first_only))
    except yaml.YAMLError as exc:
        if _is_libyaml_depth_limit(exc):
            raise DocumentError(f"document is nested deeper than {MAX_DEPTH} levels") from None
        raise DocumentError(f"invalid YAML: {_one_line(exc)}") from None
    except goyaml.GoYAMLError as exc:
        raise DocumentError(f"invalid YAML: {exc}") from None
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


def _iter_docs(text: str, first_only: bool = False) -> Iterator[Any]:
    loader = _PyLoader(text) if "!" in text and _ODD_TAG.search(text) else _Loader(text)
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            yield loader.get_data()
            if first_only:
                return
    finally:
        loader.dispose()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
