"""Properties of the document parsers, over generated input (hypothesis):

- every architecture a space can produce round-trips through its string form and its JSON exactly, and
  its hash survives both;
- the architecture string parser, given any text, returns an architecture or raises ArchitectureError;
- random edits of a valid space, architecture or spec document either parse or raise that document's
  error naming a field, never another exception; likewise for garbage YAML text and garbage JSON bodies.

Examples are bounded (and the example database off) so the file runs in seconds and never writes into
the checkout.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nas.arch import Architecture, from_string, load_architecture, parse_architecture, to_string
from nas.errors import ArchitectureError, NASError, SpaceError, SpecError
from nas.paths import references_dir, search_spaces_dir
from nas.search import SearchSpec, load_spec, parse_spec
from nas.service.validate import validate_submission
from nas.spaces import check_member, list_spaces, load_space, parse_space

# derandomize: CI sees the same examples every run (a failure found locally is added with @example);
# NAS_HYPOTHESIS_EXPLORE=1 draws fresh ones.
BOUNDED = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow],
                   derandomize=not os.environ.get("NAS_HYPOTHESIS_EXPLORE"))
SPACES = list_spaces()
REFERENCES = sorted(p.stem for p in references_dir().glob("*.json"))
SPACE_DOCS = {name: yaml.safe_load((search_spaces_dir() / f"{name}.yaml").read_text()) for name in SPACES}
SPEC_DOCS = [yaml.safe_load(p.read_text()) for p in sorted((search_spaces_dir() / "specs").glob("*.yaml"))]
SCRATCH = Path(tempfile.mkdtemp(prefix="nas-properties-"))

# Any JSON value, with the numbers parsers trip on: NaN, infinities, huge integers, negative zero.
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.sampled_from(["", "relu", "mbconv", "3", "1e400", "-1", "nan"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                          max_size=4),
                    max_leaves=12)


# -- generated architectures -------------------------------------------------------------------------------
@st.composite
def architectures(draw: st.DrawFn) -> Architecture:
    """A member of a shipped space (sampled, then mutated a few times), or a published reference."""
    import random

    if draw(st.integers(0, 9)) == 0:
        return load_architecture(draw(st.sampled_from(REFERENCES)))
    space = load_space(draw(st.sampled_from(SPACES)))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    choices = space.sample_choices(rng)
    for _ in range(draw(st.integers(0, 3))):
        choices = space.mutate(choices, rng)
    num_classes = draw(st.none() | st.integers(1, 100_000))
    return space.decode(choices, num_classes=num_classes)


@BOUNDED
@given(architectures())
def test_every_member_round_trips_through_its_string_form(arch: Architecture) -> None:
    text = to_string(arch)
    assert "\n" not in text
    again = from_string(text)
    assert again == arch and again.hash == arch.hash
    assert to_string(again) == text


@BOUNDED
@given(architectures(), st.randoms(use_true_random=False))
def test_every_member_round_trips_through_json_whatever_the_key_order(arch: Architecture, rnd: Any) -> None:
    document = json.loads(arch.canonical_json())
    again = parse_architecture(_shuffled(document, rnd))
    assert again == arch and again.hash == arch.hash and again.canonical_json() == arch.canonical_json()


@BOUNDED
@given(st.sampled_from(SPACES), st.integers(0, 2**32 - 1))
def test_a_sampled_member_belongs_to_its_space(name: str, seed: int) -> None:
    space = load_space(name)
    check_member(space, space.sample(seed=seed))


# -- the architecture string parser on any text ------------------------------------------------------------
VALID_STRINGS = [to_string(load_architecture(r)) for r in REFERENCES]
STRING_ALPHABET = "|;,_@.-0123456789abcdeghkmnoprsv"


@st.composite
def edited_strings(draw: st.DrawFn) -> str:
    """A valid string form with a few characters deleted, inserted or replaced."""
    text = list(draw(st.sampled_from(VALID_STRINGS)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "replace"]))
        char = draw(st.sampled_from(STRING_ALPHABET) | st.characters())
        if action == "insert":
            text.insert(i, char)
        elif i < len(text):
            text[i:i + 1] = [] if action == "delete" else [char]
    return "".join(text)


@settings(BOUNDED, max_examples=150)
@given(st.text(max_size=200) | edited_strings())
def test_the_string_parser_returns_an_architecture_or_raises_architecture_error(text: str) -> None:
    try:
        arch = from_string(text)
    except ArchitectureError as exc:
        assert exc.field and exc.reason
        return
    assert from_string(to_string(arch)) == arch


# -- edited documents: parse, or the document's error naming a field ---------------------------------------
@st.composite
def edited(draw: st.DrawFn, documents: list[Any]) -> Any:
    """A deep copy of one of ``documents`` with 1-3 edits at random places: a value replaced by any JSON
    value, a key or list item removed, or an unknown key added."""
    doc = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(1, 3))):
        containers = list(_containers(doc))
        container = draw(st.sampled_from(containers))
        keys = list(container) if isinstance(container, dict) else list(range(len(container)))
        action = draw(st.sampled_from(["replace", "remove", "add"] if keys else ["add"]))
        if action == "add":
            if isinstance(container, dict):
                container[draw(st.text(min_size=1, max_size=10))] = draw(JSON)
            else:
                container.append(draw(JSON))
        else:
            key = draw(st.sampled_from(keys))
            if action == "replace":
                container[key] = draw(JSON)
            else:
                del container[key]
    return doc


def _containers(value: Any) -> list[Any]:
    found = [value] if isinstance(value, dict | list) else []
    for item in (value.values() if isinstance(value, dict) else value if isinstance(value, list) else []):
        found += _containers(item)
    return found


def _shuffled(value: Any, rnd: Any) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


def assert_names_a_field(field: str, document: Any, model_fields: set[str]) -> None:
    """The error's field is a path into the document: its first part is a key of the document or of the
    model (a missing required one), or "(document)" when the document is not a mapping at all."""
    if not isinstance(document, dict):
        assert field == "(document)", field
        return
    if field.startswith('"'):
        root, _ = json.JSONDecoder().raw_decode(field)  # a key that is not a plain name is JSON-quoted
    else:
        root = field.split(".")[0].split("[")[0]
    assert root in set(map(str, document)) | model_fields, (field, list(document))


ARCH_DOCS = [load_architecture(r).model_dump(mode="json") for r in REFERENCES]


@settings(BOUNDED, max_examples=150)
@given(edited(ARCH_DOCS) | JSON)
def test_an_edited_architecture_parses_or_names_the_field(document: Any) -> None:
    try:
        parse_architecture(document)
    except ArchitectureError as exc:
        assert exc.reason
        assert_names_a_field(exc.field, document, set(Architecture.model_fields))


@settings(BOUNDED, max_examples=150)
@given(edited(list(SPACE_DOCS.values())) | JSON, st.integers(0, 2**16))
def test_an_edited_space_parses_or_names_the_field(document: Any, seed: int) -> None:
    from nas.spaces import SpaceDefinition

    try:
        space = parse_space(document, "edited.yaml")
    except SpaceError as exc:
        assert exc.source == "edited.yaml" and exc.reason
        assert_names_a_field(exc.field, document, set(SpaceDefinition.model_fields))
        return
    try:  # a space that parses decodes every choice into an architecture (or a clear library error)
        space.sample(seed=seed)
    except NASError:
        pass


@settings(BOUNDED, max_examples=200)
@given(edited(SPEC_DOCS) | JSON)
@example({**SPEC_DOCS[0], ".": None})  # a key that reads as a path is quoted in the error's field
@example({**SPEC_DOCS[0], "a.b[0]": 1, "": 2})
def test_an_edited_spec_parses_or_names_the_field(document: Any) -> None:
    try:
        parse_spec(document, "edited.yaml")
    except SpecError as exc:
        assert exc.source == "edited.yaml" and exc.reason
        assert_names_a_field(exc.field, document, set(SearchSpec.model_fields))


@settings(BOUNDED, max_examples=200)
@given(edited(SPEC_DOCS) | JSON)
def test_an_edited_api_body_is_accepted_or_a_spec_error_naming_the_field(document: Any) -> None:
    """What ``POST /searches`` runs before storing anything: the schema, non-finite numbers, and the
    space, device and reference names."""
    try:
        spec = validate_submission(document)
    except SpecError as exc:
        assert exc.source == "body" and exc.reason
        assert_names_a_field(exc.field, document, set(SearchSpec.model_fields))
        return
    assert _finite(spec.model_dump(mode="json"))


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


# -- YAML text -------------------------------------------------------------------------------------------
@st.composite
def edited_yaml(draw: st.DrawFn, texts: list[str]) -> str:
    text = list(draw(st.sampled_from(texts)))
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, len(text)))
        text[i:i + draw(st.integers(0, 3))] = draw(st.sampled_from([":", "[", "]", "{", "}", "- ", "\n", "\t", "'",
                                                                    '"', "&a", "*a", "!!python/object", "%"])
                                                   | st.text(max_size=3))
    return "".join(text)


SPACE_TEXTS = [(search_spaces_dir() / f"{n}.yaml").read_text() for n in SPACES]
SPEC_TEXTS = [p.read_text() for p in sorted((search_spaces_dir() / "specs").glob("*.yaml"))]


@settings(BOUNDED, max_examples=100)
@given(edited_yaml(SPACE_TEXTS))
def test_a_space_file_with_broken_yaml_is_a_space_error(text: str) -> None:
    path = SCRATCH / "space.yaml"
    path.write_text(text)
    try:
        load_space(str(path))
    except SpaceError as exc:
        assert exc.source == str(path) and exc.field and exc.reason


@settings(BOUNDED, max_examples=100)
@given(edited_yaml(SPEC_TEXTS))
def test_a_spec_file_with_broken_yaml_is_a_spec_error(text: str) -> None:
    path = SCRATCH / "spec.yaml"
    path.write_text(text)
    try:
        load_spec(path)
    except SpecError as exc:
        assert exc.source == str(path) and exc.field and exc.reason
